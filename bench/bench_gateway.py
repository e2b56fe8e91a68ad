"""Gateway throughput: events verified and forwarded per second vs a plain relay (no checks).

Both sides run in this process pinned to one CPU, against the same two local Mosquitto brokers
(site and upstream, on another CPU when there is one). Each run pre-loads N signed events into
the site broker for an offline persistent session, starts the forwarder and measures until
``mosquitto_sub -C N`` on the upstream broker has received all N.

    python bench/bench_gateway.py            # N=6000, 5 runs
    python bench/bench_gateway.py --smoke    # N=300, 1 run (CI)
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from edge_agent.dataform import from_plain  # noqa: E402
from edge_agent.gateway.pipeline import Gateway  # noqa: E402
from edge_agent.gateway.settings import GatewaySettings  # noqa: E402
from edge_agent.signing.trust import TrustStore  # noqa: E402
from tests.support.gateway import SimStation  # noqa: E402

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_SUB = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
SITE = "site-a"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_broker(workdir: Path, cpus: set[int]) -> tuple[subprocess.Popen[bytes], int]:
    """A local broker like the site config (minus TLS): persistence, big queues, inflight 100."""
    workdir.mkdir(parents=True)
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "max_queued_messages 0\nmax_inflight_messages 100\n"
        + ("user root\n" if os.geteuid() == 0 else "")
    )
    proc = subprocess.Popen(
        [MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    if cpus:
        os.sched_setaffinity(proc.pid, cpus)
    end = time.monotonic() + 10
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("mosquitto did not start")


def preload(port: int, items: list[tuple[str, bytes]]) -> None:
    """Publish QoS 1 and wait for all PUBACKs."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.max_inflight_messages_set(200)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [client.publish(t, p, qos=1) for t, p in items]
    for info in infos:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()


def counter(port: int, topic: str, n: int) -> subprocess.Popen[bytes]:
    """mosquitto_sub that exits after ``n`` messages; started (subscribed) before returning."""
    proc = subprocess.Popen(
        [
            MOSQUITTO_SUB,
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-t",
            topic,
            "-q",
            "1",
            "-C",
            str(n),
            "-i",
            f"bench-count-{topic.split('/', maxsplit=1)[0]}",
            "-c",
        ],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.3)  # mosquitto_sub has no "subscribed" signal; its session is persistent (-c)
    return proc


class Relay:
    """The baseline: subscribe QoS 1 (persistent session), re-publish QoS 1, no checks."""

    def __init__(self, site_port: int, up_port: int, prefix: str) -> None:
        self.prefix = prefix
        self.sub = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"relay-{prefix}",
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        self.pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self.pub.max_inflight_messages_set(100)
        self.subscribed = threading.Event()
        self.sub.on_connect = lambda c, *_: c.subscribe("battrace/v1/+/+/event", qos=1)
        self.sub.on_subscribe = lambda *_: self.subscribed.set()
        self.sub.on_message = lambda _c, _u, m: self.pub.publish(
            prefix + m.topic[len("battrace/v1") :], m.payload, qos=1
        )
        self.ports = (site_port, up_port)

    def start(self) -> None:
        self.pub.connect("127.0.0.1", self.ports[1])
        self.pub.loop_start()
        self.sub.connect("127.0.0.1", self.ports[0])
        self.sub.loop_start()

    def stop(self) -> None:
        for c in (self.sub, self.pub):
            c.disconnect()
            c.loop_stop()


UPSTREAM_PROTOCOL = ["3.1.1"]  # set from --upstream-protocol


def gateway_settings(workdir: Path, site_port: int, up_port: int, prefix: str) -> GatewaySettings:
    return from_plain(
        GatewaySettings,
        {
            "site_mqtt": {"port": site_port, "client_id": f"gw-{prefix}", "protocol": "3.1.1"},
            "upstream_mqtt": {
                "port": up_port,
                "client_id": f"gw-up-{prefix}",
                "max_inflight": 100,
                "protocol": UPSTREAM_PROTOCOL[0],
            },
            "upstream_prefix": prefix,
            "trust_store": str(workdir / "trust.json"),
            "data_dir": str(workdir / prefix),
            "outbox": {"min_free_disk_bytes": 0},
        },
    )


def run_once(
    kind: str, n_run: int, ports: tuple[int, int], work: Path, events: list[tuple[str, bytes]]
) -> tuple[float, float]:
    """Events per wall-clock second and per CPU second of one run of ``kind``."""
    site_port, up_port = ports
    prefix = f"{kind}{n_run}"
    if kind == "gateway":
        forwarder: Gateway | Relay = Gateway(gateway_settings(work, site_port, up_port, prefix))
    else:
        forwarder = Relay(site_port, up_port, prefix)
    # Create the persistent site session, go offline, queue the events, come back and time it.
    forwarder.start()
    subscribed = (
        forwarder.site.subscribed if isinstance(forwarder, Gateway) else forwarder.subscribed
    )
    assert subscribed.wait(20)
    forwarder.stop()
    preload(site_port, events)
    count = counter(up_port, f"{prefix}/#", len(events))
    if kind == "gateway":
        forwarder = Gateway(gateway_settings(work, site_port, up_port, prefix))
    else:
        forwarder = Relay(site_port, up_port, prefix)
    t0, c0 = time.perf_counter(), time.process_time()
    forwarder.start()
    rc = count.wait(300)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    forwarder.stop()
    assert rc == 0, f"counter exited with {rc}"
    if isinstance(forwarder, Gateway):
        accepted = forwarder.metrics.registry.get_sample_value(
            "gateway_accepted_total", {"kind": "event"}
        )
        assert accepted == len(events), accepted
    return len(events) / elapsed, len(events) / cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI")
    parser.add_argument("--events", type=int, default=6000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--alg", choices=["ed25519", "p256"], default="ed25519", help="station keys"
    )
    parser.add_argument(
        "--upstream-protocol",
        choices=["3.1.1", "5", "auto"],
        default="3.1.1",
        help="gateway's upstream MQTT version (the relay speaks 3.1.1 on both sides)",
    )
    args = parser.parse_args()
    UPSTREAM_PROTOCOL[0] = args.upstream_protocol
    logging.disable(logging.WARNING)  # reconnect chatter of the start/stop cycles
    n, runs = (300, 1) if args.smoke else (args.events, args.runs)
    cpus = sorted(os.sched_getaffinity(0))
    mine, theirs = {cpus[0]}, set(cpus[1:]) or {cpus[0]}
    os.sched_setaffinity(0, mine)  # the forwarder under test gets one core
    with tempfile.TemporaryDirectory(prefix="bench-gw-") as tmp:
        work = Path(tmp)
        site, site_port = start_broker(work / "site", theirs)
        up, up_port = start_broker(work / "up", theirs)
        try:
            stations = [
                SimStation(SITE, f"st{i:02d}", work / "keys" / str(i), alg=args.alg)
                for i in range(4)
            ]
            trust = TrustStore.load(work / "trust.json", create=True)
            for st in stations:
                trust.add(st.public_pem.read_bytes(), station=st.station, site=SITE)
            trust.save()
            events = [(st.topic, st.next_event()[1]) for _ in range(n // 4) for st in stations]
            results: dict[str, list[float]] = {"gateway": [], "relay": []}
            per_cpu: dict[str, list[float]] = {"gateway": [], "relay": []}
            for i in range(runs):
                for kind in ("relay", "gateway"):
                    wall, cpu = run_once(kind, i, (site_port, up_port), work, events)
                    results[kind].append(wall)
                    per_cpu[kind].append(cpu)
        finally:
            for p in (site, up):
                p.terminate()
                p.wait(10)
    gw, relay = statistics.median(results["gateway"]), statistics.median(results["relay"])
    gw_cpu, relay_cpu = statistics.median(per_cpu["gateway"]), statistics.median(per_cpu["relay"])
    print(
        f"gateway benchmark: {len(events)} signed events ({args.alg}, {len(stations)} stations), "
        f"{runs} run(s), forwarder pinned to CPU {cpus[0]}, brokers on {sorted(theirs)}, "
        f"gateway upstream MQTT {args.upstream_protocol}"
    )
    print(f"{'forwarder':<32} {'ev/s':>8} {'ev/CPU-s':>9}  runs ev/s")
    for name, kind, wall, cpu in (
        ("relay (baseline, no checks)", "relay", relay, relay_cpu),
        ("gateway (verify+dedupe+outbox)", "gateway", gw, gw_cpu),
    ):
        runs_text = " ".join(f"{r:.0f}" for r in results[kind])
        print(f"{name:<32} {wall:>8.0f} {cpu:>9.0f}  {runs_text}")
    print(
        f"ratio gateway/relay: {gw / relay:.2f} wall, {gw_cpu / relay_cpu:.2f} per CPU second "
        f"(goals: >= 0.5 and >= 3000 ev/s; 3000 ev/s {'met' if gw >= 3000 else 'NOT met'} wall, "
        f"{'met' if gw_cpu >= 3000 else 'NOT met'} per CPU second)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
