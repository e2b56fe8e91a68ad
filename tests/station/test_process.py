"""The station as separate processes: ``edge-agent identify`` (in-process path), ``edge-agent
run`` with ``identify`` over its control socket, SIGTERM shutdown and the Last Will on SIGKILL.

The sources are simulators in their own processes: a SunSpec battery over Modbus TCP
(``edge-agent sim bms-modbus``), the node firmware behind a pty (``edge-agent sim node``) and a
folder of rendered label photos read by the ``files`` camera backend.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import signal
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import pytest

from edge_agent.event_codec import event_from_plain
from edge_agent.model import IdentificationEvent
from edge_agent.sim.label_render import render_label
from edge_agent.station.control import request_identify
from edge_agent.uplink.topics import StationTopics
from tests.station.procs import LineProcess, Service, run_cli, sim
from tests.support.gateway import wait_until
from tests.support.mosquitto import MosquittoBroker, RecordingSubscriber, free_port
from tests.support.nodes import require_micropython
from tests.support.station import (
    SITE,
    STATION,
    StationFiles,
    event_key,
    evidence_payloads,
    retained_status,
    station_files,
    station_plain,
    verified_events,
    write_config,
)

LABEL = "03UPBA2000002NC550000042"  # Example Storage Co (03U), LFP, matches the SunSpec sim
MASS_KG = 575.0
TOPICS = StationTopics(SITE, STATION)


@dataclass
class Bench:
    """Broker, simulators, station files, config and a verifying subscriber."""

    broker: MosquittoBroker
    files: StationFiles
    config: Path
    sub: RecordingSubscriber
    metrics_port: int


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    """One bench for the module (simulator start-up is the slow part)."""
    require_micropython()
    root = tmp_path_factory.mktemp("station-proc")
    broker = MosquittoBroker(root / "mosquitto")
    broker.start()
    procs: list[LineProcess] = []
    sub: RecordingSubscriber | None = None
    try:
        modbus = sim("bms-modbus", "--kind", "sunspec", "--tcp", "127.0.0.1:0")
        procs.append(modbus)
        node = sim("node", "--role", "scale+sensors", "--workdir", str(root / "node"))
        procs.append(node)
        modbus_url, node_port = modbus.line(), node.line()
        node.send(f"weight {MASS_KG}")
        assert node.line() == "ok"
        labels = root / "labels"
        labels.mkdir()
        for frame in range(2):
            image = render_label(LABEL, "code128", seed=frame, degrade=0.25)
            cv2.imwrite(str(labels / f"frame-{frame}.png"), image)
        files = station_files(root / "station")
        plain = station_plain(
            files,
            broker,
            station={
                "bms": {"timeout_s": 5.0, "retries": 0},
                "label": {"timeout_s": 5.0, "retries": 0},
                "weight": {"timeout_s": 8.0, "retries": 0},
            },
            bms={"profile": "sunspec-battery", "modbus": {"url": modbus_url, "timeout_s": 1.0}},
            label={"source": str(labels), "backend": "files"},
            nodes={"ports": [node_port], "hello_timeout_s": 10.0},
            metrics={"port": free_port()},
        )
        config = write_config(root / "edge-agent.toml", plain)
        sub = RecordingSubscriber(broker, "battrace/v1/#", key_of=event_key(files.trust))
        yield Bench(broker, files, config, sub, plain["metrics"]["port"])
    finally:
        if sub is not None:
            sub.close()
        for proc in procs:
            proc.close()
        broker.kill()
        shutil.rmtree(root / "mosquitto" / "data", ignore_errors=True)


def _received(bench: Bench, event_id: str) -> IdentificationEvent:
    """The event as the subscriber verified it, after its evidence photo was checked."""
    assert bench.sub.wait_for([event_id, f"evidence:{event_id}"], timeout=30) == set()
    assert not [k for k in bench.sub.counts if k.startswith(("BAD", "OTHER"))], bench.sub.counts
    event = verified_events(bench.sub, bench.files.trust)[event_id]
    (evidence,) = event.evidence
    photo = evidence_payloads(bench.sub)[event_id]
    assert hashlib.sha256(photo).hexdigest() == evidence.sha256
    return event


def test_identify_in_process_with_simulators_in_other_processes(bench: Bench) -> None:
    done = run_cli(bench.config, "identify", "--json", "--wait", "20")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["published"] is True
    event = event_from_plain(answer["event"])
    received = _received(bench, event.event_id)
    assert received == event
    assert event.pack.pack_code == LABEL
    assert event.readings.bms is not None and event.readings.bms.status == "ok"
    assert event.readings.bms.profile == "sunspec-battery"
    assert event.readings.weight is not None and event.readings.weight.mass_kg is not None
    assert abs(event.readings.weight.mass_kg - MASS_KG) < 1.0
    assert all(c.status in ("pass", "skip") for c in event.checks), event.checks
    assert (event.triage.transport_class, event.triage.disposition) == (
        "normal",
        "reuse_candidate",
    )


def test_run_service_identify_over_control_socket_then_sigterm(bench: Bench) -> None:
    service = Service(bench.config, bench.files.data_dir)
    try:
        service.wait_ready()
        done = run_cli(bench.config, "identify", "--json", "--observe", "swelling", "--wait", "20")
        assert done.returncode == 0, done.stderr + service.err()
        answer = json.loads(done.stdout)
        assert answer["published"] is True
        event = event_from_plain(answer["event"])
        assert "swelling" in event.observations
        assert event.triage.transport_class == "damaged_defective"
        assert _received(bench, event.event_id) == event
        # the service (not the client) identified: its log carries the event
        assert retained_status(bench.broker, TOPICS.status).get("state") == "online"
        service.signal(signal.SIGTERM)
        assert service.wait(30) == 0, service.err()
        assert not service.socket.exists()
        assert retained_status(bench.broker, TOPICS.status).get("state") == "offline"
    finally:
        service.close()
    assert event.event_id in service.err()  # one structured log line per event


def test_last_will_marks_station_offline_after_sigkill(bench: Bench) -> None:
    service = Service(bench.config, bench.files.data_dir)
    try:
        service.wait_ready()
        status: dict[str, object] = {}
        for _ in range(50):  # the birth message follows the connection, shortly after ready
            status = retained_status(bench.broker, TOPICS.status, timeout=2.0)
            if status.get("state") == "online":
                break
        assert status.get("state") == "online"
        service.signal(signal.SIGKILL)
        assert service.wait(10) == -signal.SIGKILL
        assert retained_status(bench.broker, TOPICS.status).get("state") == "offline"
    finally:
        service.close()


async def _raw_request(path: Path, line: bytes) -> dict[str, object]:
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(line)
    await writer.drain()
    answer = await asyncio.wait_for(reader.readline(), 30)
    writer.close()
    return json.loads(answer)  # type: ignore[no-any-return]


def test_control_socket_validates_requests_serialises_identifies_and_exports_metrics(
    bench: Bench,
) -> None:
    service = Service(bench.config, bench.files.data_dir)
    try:
        service.wait_ready()
        bad = {
            b"not json\n": "request is not a JSON object",
            b'{"op": "reboot"}\n': "unknown request (expected op=identify, op=scale or op=rotate)",
            b'{"op": "identify", "observations": "swelling"}\n': "observations must be a list",
            b'{"op": "identify", "wait_s": 601}\n': "wait_s must be a number 0..600",
            b'{"op": "identify", "wait_s": true}\n': "wait_s must be a number 0..600",
            b'{"op": "identify", "observations": ["glitter"]}\n': "unknown observation(s) glitter",
        }
        for line, error in bad.items():
            answer = asyncio.run(_raw_request(service.socket, line))
            assert answer["ok"] is False and error in str(answer["error"]), (line, answer)

        async def two_at_once() -> list[dict[str, object]]:
            return list(
                await asyncio.gather(
                    request_identify(service.socket, [], 20.0),
                    request_identify(service.socket, ["leak"], 20.0),
                )
            )

        answers = asyncio.run(two_at_once())  # one pack at a time: the second waits its turn
        assert all(a["ok"] and a["published"] for a in answers), answers
        events = [event_from_plain(a["event"]) for a in answers]
        assert sorted(e.seq for e in events) == [1, 2] and len({e.boot_epoch for e in events}) == 1
        for event in events:
            assert _received(bench, event.event_id) == event
        assert {e.triage.transport_class for e in events} == {"normal", "damaged_defective"}
        url = f"http://127.0.0.1:{bench.metrics_port}/metrics"

        def scrape() -> str:
            return urllib.request.urlopen(url, timeout=10).read().decode()

        # PUBACK answers the request; the settler deletes the rows a moment later
        assert wait_until(lambda: "edge_agent_uplink_outbox_depth 0.0" in scrape(), 30)
        text = scrape()
        assert (
            'edge_agent_identifications_total{disposition="reuse_candidate",'
            'transport_class="normal"} 1.0' in text
        )
        assert "edge_agent_uplink_published_total 4.0" in text  # 2 events + 2 photos
        assert "edge_agent_uplink_outbox_depth 0.0" in text
        assert 'edge_agent_source_failures_total{source="bms"}' not in text
        service.signal(signal.SIGTERM)
        assert service.wait(30) == 0, service.err()
    finally:
        service.close()


def test_sigterm_during_an_identification_lets_it_finish(bench: Bench) -> None:
    service = Service(bench.config, bench.files.data_dir)
    try:
        service.wait_ready()

        async def identify_then_sigterm() -> dict[str, Any]:
            task = asyncio.create_task(request_identify(service.socket, [], 20.0))
            await asyncio.sleep(0.3)  # sources are being read (label decode, scale)
            service.signal(signal.SIGTERM)
            return await task

        answer = asyncio.run(identify_then_sigterm())
        assert service.wait(30) == 0, service.err()
        assert not service.socket.exists()
        assert "Traceback" not in service.err(), service.err()
    finally:
        service.close()
    assert answer["ok"] is True, answer  # answered, not dropped
    if not answer["published"]:  # committed but not yet sent: the next start delivers it
        service = Service(bench.config, bench.files.data_dir)
        try:
            service.wait_ready()
            _received(bench, answer["event_id"])
        finally:
            service.close()
    assert _received(bench, answer["event_id"]) == event_from_plain(answer["event"])


def test_identify_falls_back_in_process_when_the_control_socket_is_stale(bench: Bench) -> None:
    # a service killed by SIGKILL or a power cut leaves its socket file behind; nobody listens
    import socket as socket_module

    bench.files.data_dir.mkdir(parents=True, exist_ok=True)
    stale = bench.files.data_dir / "agent.sock"
    listener = socket_module.socket(socket_module.AF_UNIX, socket_module.SOCK_STREAM)
    listener.bind(str(stale))
    listener.close()
    assert stale.exists()
    done = run_cli(bench.config, "identify", "--json", "--wait", "20")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["published"] is True
    assert "identifying in this process" in done.stderr
    _received(bench, event_from_plain(answer["event"]).event_id)
