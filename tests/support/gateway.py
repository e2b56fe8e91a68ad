"""Gateway test support: site broker from hardware/mosquitto, simulated stations, collectors."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import cbor2
import paho.mqtt.client as mqtt
import pytest

from edge_agent.dataform import from_plain, to_plain
from edge_agent.event_codec import decode_event, uuid7
from edge_agent.gateway.settings import GatewaySettings
from edge_agent.model import (
    BmsReading,
    Clock,
    Evidence,
    IdentificationEvent,
    LabelReading,
    PackIdentity,
    Readings,
    Triage,
    WeightReading,
)
from edge_agent.signing.events import sign_event
from edge_agent.signing.keys import PUBLIC_KEY_FILE, init_keys, load_signer
from edge_agent.signing.signer import Signer
from edge_agent.signing.trust import TrustStore
from tests.support.mosquitto import MosquittoBroker, RecordingSubscriber

ROOT = Path(__file__).resolve().parents[2]
HARDWARE = ROOT / "hardware" / "mosquitto"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
SITE = "site-a"


def free_port() -> int:
    """A TCP port free right now on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: object, timeout: float = 20.0, interval: float = 0.02) -> bool:
    """Poll ``predicate()`` until true or ``timeout``; returns the last result."""
    assert callable(predicate)
    end = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > end:
            return bool(predicate())
        time.sleep(interval)


def make_pki(out: Path, stations: list[str]) -> Path:
    """Run hardware/mosquitto/make-test-pki.sh (the script under test) into ``out``."""
    subprocess.run(
        ["sh", str(HARDWARE / "make-test-pki.sh"), str(out), *stations],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return out


class Broker:
    """A mosquitto process with its own config file, port and persistence directory."""

    def __init__(self, workdir: Path, config: str, port: int) -> None:
        self.workdir = workdir
        self.port = port
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(config)
        self.log = workdir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start and wait until the port accepts connections."""
        log = self.log.open("ab")
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf), "-v"], stdout=log, stderr=log
        )
        log.close()

        def accepting() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return True
            except OSError:
                return False

        assert wait_until(accepting, 15), "mosquitto did not start"

    def stop(self) -> None:
        """Graceful stop (SIGTERM): mosquitto writes its persistence file."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def restart(self) -> None:
        """Stop then start on the same port."""
        self.stop()
        self.start()


ROOT_CONF = "user root\n" if os.geteuid() == 0 else ""  # mosquitto drops root to "mosquitto"


def upstream_broker(workdir: Path) -> MosquittoBroker:
    """The upstream broker: TLS with client certificates, persistence (uplink's fixture)."""
    from tests.support.mosquitto import make_tls_material

    # (the uplink fixture adds "user root" itself when run as root)
    return MosquittoBroker(workdir / "upstream", tls=make_tls_material(workdir / "up-tls"))


def plain_broker(workdir: Path) -> Broker:
    """A plain persistent broker on loopback (the upstream in the tests)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = (
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
        f"persistence_location {workdir}/\nmax_queued_messages 100000\nmax_inflight_messages 100\n"
    )
    return Broker(workdir, conf, port)


def site_broker(workdir: Path, pki: Path, site: str = SITE) -> Broker:
    """The real hardware/mosquitto/site.conf and acl with paths and port rewritten."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    acl = (HARDWARE / "acl").read_text().replace("SITE", site)
    (workdir / "acl").write_text(acl)
    conf = (HARDWARE / "site.conf").read_text()
    conf = conf.replace("/etc/mosquitto/battrace/acl", str(workdir / "acl"))
    conf = conf.replace("/etc/mosquitto/battrace", str(pki))
    conf = conf.replace("/var/lib/mosquitto/", f"{workdir}/")
    conf = conf.replace("listener 8883", f"listener {port} 127.0.0.1")
    conf += "\n" + ROOT_CONF
    return Broker(workdir, conf, port)


def tls_client(pki: Path, name: str | None, client_id: str = "") -> mqtt.Client:
    """A paho client trusting the test CA, presenting ``name``.crt unless ``name`` is None."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
    )
    cert = str(pki / f"{name}.crt") if name else None
    key = str(pki / f"{name}.key") if name else None
    client.tls_set(ca_certs=str(pki / "ca.crt"), certfile=cert, keyfile=key)
    return client


def make_event(
    signer: Signer,
    *,
    site: str,
    station: str,
    boot_epoch: int,
    seq: int,
    evidence: tuple[bytes, ...] = (),
    event_id: str | None = None,
) -> IdentificationEvent:
    """A small valid v1 event from this signer."""
    return IdentificationEvent(
        event_id=event_id or uuid7(),
        site=site,
        station=station,
        kid=signer.kid.hex(),
        boot_epoch=boot_epoch,
        seq=seq,
        clock=Clock(utc="2026-11-27T10:00:00Z", state="synced"),
        pack=PackIdentity(pack_code="03HPB0DA0001B1D8A0000001"),
        readings=Readings(
            bms=BmsReading(status="absent"),
            label=LabelReading(status="absent"),
            weight=WeightReading(status="ok", mass_kg=312.5, stable=True),
        ),
        triage=Triage(
            transport_class="normal", packing_instruction="P903", disposition="reuse_candidate"
        ),
        evidence=tuple(
            Evidence(kind="label_photo", sha256=hashlib.sha256(p).hexdigest(), size=len(p))
            for p in evidence
        ),
    )


@dataclass
class SimStation:
    """A station: its signing key, its boot epoch and a per-boot sequence counter."""

    site: str
    station: str
    key_dir: Path
    boot_epoch: int = 1
    seq: int = 0
    alg: Literal["ed25519", "p256"] = "ed25519"
    signer: Signer = field(init=False)

    def __post_init__(self) -> None:
        init_keys(self.key_dir, self.alg)
        self.signer = load_signer(self.key_dir)

    @property
    def public_pem(self) -> Path:
        """The station's public key file (for ``gateway trust add``)."""
        return self.key_dir / PUBLIC_KEY_FILE

    @property
    def topic(self) -> str:
        """Its event topic on the site broker."""
        return f"battrace/v1/{self.site}/{self.station}/event"

    def new_event(
        self, evidence: tuple[bytes, ...] = (), event_id: str | None = None
    ) -> IdentificationEvent:
        """A new, not yet signed event of this station (its next sequence number)."""
        self.seq += 1
        return make_event(
            self.signer,
            site=self.site,
            station=self.station,
            boot_epoch=self.boot_epoch,
            seq=self.seq,
            evidence=evidence,
            event_id=event_id,
        )

    def next_event(self, evidence: tuple[bytes, ...] = ()) -> tuple[IdentificationEvent, bytes]:
        """A new event and its signed COSE bytes."""
        event = self.new_event(evidence)
        return event, sign_event(event, self.signer)


class Collector:
    """Subscribes to a broker and records every (topic, payload) it receives."""

    def __init__(self, port: int, topic: str = "#") -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self._subscribed = threading.Event()
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "collector did not subscribe"

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def snapshot(self) -> list[tuple[str, bytes]]:
        """A copy of what arrived so far."""
        with self._lock:
            return list(self.messages)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def publish_all(client: mqtt.Client, items: list[tuple[str, bytes]], timeout: float = 20) -> None:
    """Publish QoS 1 and wait for every PUBACK."""
    infos = [client.publish(t, p, qos=1) for t, p in items]
    for info in infos:
        info.wait_for_publish(timeout)
        assert info.is_published()


def gateway_settings(
    workdir: Path, pki: Path, site_port: int, upstream: MosquittoBroker, **overrides: object
) -> GatewaySettings:
    """Gateway settings for the test brokers: site over the real site TLS config, upstream TLS."""
    assert upstream.tls is not None
    plain: dict[str, object] = {
        "site_mqtt": {
            "port": site_port,
            "client_id": "test-gateway",
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 1.0,
            "tls": {
                "enabled": True,
                "ca_file": str(pki / "ca.crt"),
                "cert_file": str(pki / "gateway.crt"),
                "key_file": str(pki / "gateway.key"),
            },
        },
        "upstream_mqtt": {
            "port": upstream.port,
            "client_id": "test-gateway-up",
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 1.0,
            "tls": {
                "enabled": True,
                "ca_file": str(upstream.tls.ca),
                "cert_file": str(upstream.tls.client_cert),
                "key_file": str(upstream.tls.client_key),
            },
        },
        "upstream_prefix": "cloud/v1",
        "trust_store": str(workdir / "trust.json"),
        "data_dir": str(workdir / "data"),
        "outbox": {"min_free_disk_bytes": 0},
        "max_message_bytes": 4096,
        "evidence_wait_s": 1.0,
        **overrides,
    }
    return from_plain(GatewaySettings, plain)


def trust_stations(path: Path, stations: list[SimStation]) -> None:
    """Register the stations' public keys in the gateway trust store."""
    store = TrustStore.load(path, create=True)
    for st in stations:
        store.add(st.public_pem.read_bytes(), station=st.station, site=st.site)
    store.save()


def station_client(pki: Path, port: int, name: str) -> mqtt.Client:
    """A connected station client (its own certificate), network loop running."""
    client = tls_client(pki, name, client_id=f"station-{name}")
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def event_key(topic: str, payload: bytes) -> str:
    """RecordingSubscriber key: the event id (events: decoded body; evidence: topic level)."""
    if "/evidence/" in topic:
        return "evidence:" + topic.rsplit("/", 1)[1]
    try:
        return "event:" + decode_event(cbor2.loads(payload).value[2]).event_id
    except Exception:  # not an event we made
        return "other"


def to_toml(plain: dict[str, object], prefix: str = "") -> str:
    """A small TOML writer for nested tables of scalars (test configs)."""
    scalars, tables = [], []
    for key, value in plain.items():
        if isinstance(value, dict):
            tables.append((key, value))
        elif isinstance(value, bool):
            scalars.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, int | float):
            scalars.append(f"{key} = {value}")
        else:
            scalars.append(f"{key} = {json.dumps(str(value))}")
    out = ""
    if scalars:
        out += (f"[{prefix}]\n" if prefix else "") + "\n".join(scalars) + "\n\n"
    for key, value in tables:
        out += to_toml(value, f"{prefix}.{key}" if prefix else key)
    return out


def gateway_config_file(path: Path, settings: GatewaySettings, metrics_port: int = 0) -> Path:
    """Write ``settings`` as an edge-agent TOML config for ``edge-agent gateway --config``."""
    plain = {"gateway": to_plain(settings), "metrics": {"port": metrics_port}}
    path.write_text(to_toml(plain))
    return path


class GatewayProcess:
    """``python -m edge_agent gateway --config FILE`` as a child process (SIGKILL-able)."""

    def __init__(self, config: Path, log: Path, *, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.log = log
        self.env = env or {}  # extra variables (e.g. NOTIFY_SOCKET)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the gateway process."""
        env = {**os.environ, "PYTHONPATH": str(ROOT), **self.env}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "edge_agent",
                    "--log-format",
                    "json",
                    "gateway",
                    "--config",
                    str(self.config),
                ],
                stdout=log,
                stderr=log,
                env=env,
                cwd=ROOT,
            )

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self) -> int | None:
        """SIGTERM and wait; the exit status."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            return self.proc.wait(20)
        return self.proc.returncode if self.proc else None


GW_STATIONS = ["st01", "st02", "st03"]


@dataclass
class Rig:
    pki: Path
    site: Broker
    upstream: MosquittoBroker
    stations: dict[str, SimStation]
    workdir: Path

    def settings(self, **overrides: object) -> GatewaySettings:
        return gateway_settings(self.workdir, self.pki, self.site.port, self.upstream, **overrides)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"), GW_STATIONS)


@pytest.fixture
def rig(tmp_path: Path, pki: Path) -> Iterator[Rig]:
    site = site_broker(tmp_path / "site", pki)
    site.start()
    upstream = upstream_broker(tmp_path)
    upstream.start()
    stations = {n: SimStation(SITE, n, tmp_path / "keys" / n) for n in GW_STATIONS}
    trust_stations(tmp_path / "trust.json", list(stations.values()))
    try:
        yield Rig(pki, site, upstream, stations, tmp_path)
    finally:
        site.stop()
        upstream.kill()


@pytest.fixture
def recorder(rig: Rig) -> Iterator[RecordingSubscriber]:
    rec = RecordingSubscriber(rig.upstream, "cloud/v1/#", key_of=event_key)
    yield rec
    rec.close()
