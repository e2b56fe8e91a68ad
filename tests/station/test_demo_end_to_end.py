"""End to end in one process: the demo bench's simulators -> StationAgent -> real Mosquitto ->
an independent subscriber that verifies every event against a trust store.

Sources are real simulators: SunSpec over Modbus TCP, GB/T 27930 on a python-can virtual bus,
rendered label photos read through the folder camera, and the node firmware under the
MicroPython unix port as scale and sensors.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from pathlib import Path

from rich.console import Console

from edge_agent.config import config_from_plain
from edge_agent.sim.demo import DemoSimulators
from edge_agent.sim.demo_packs import DEMO_PACKS
from edge_agent.station.agent import StationAgent
from edge_agent.station.workflow import StationSources
from tests.support.mosquitto import MosquittoBroker, RecordingSubscriber, mosquitto_broker
from tests.support.nodes import require_micropython
from tests.support.station import (
    SITE,
    STATION,
    event_key,
    evidence_payloads,
    retained_status,
    station_files,
    station_plain,
    verified_events,
)

__all__ = ["mosquitto_broker"]


def test_demo_packs_identified_published_and_verified(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    require_micropython()
    broker = mosquitto_broker
    files = station_files(tmp_path)
    sub = RecordingSubscriber(broker, "battrace/v1/#", key_of=event_key(files.trust))
    plain = station_plain(
        files,
        broker,
        station={
            "bms": {"timeout_s": 2.0, "retries": 0},
            "label": {"timeout_s": 4.0, "retries": 0},
            "weight": {"timeout_s": 6.0, "retries": 0},
        },
    )
    config = config_from_plain(plain)
    results: list[tuple[str, str, str, str]] = []  # event id, code, class, disposition
    statuses: list[dict[str, object]] = []

    async def main() -> None:
        bench = DemoSimulators(tmp_path / "bench", Console(file=io.StringIO()))
        await bench.start()
        assert bench.nodes is not None, "the node simulator must serve as the scale"
        sources = StationSources(
            bms=bench.read_bms,
            label=bench.read_label,
            weight=bench.read_weight,
            sensors=bench.read_sensors,
        )
        try:
            async with StationAgent(config, sources=sources) as agent:
                for index, pack in enumerate(DEMO_PACKS):
                    profile = bench.sunspec_profile if pack.bms == "sunspec" else bench.gbt_profile
                    async with bench.docked(pack, index):
                        result = await agent.identify(
                            trigger="weight", observations=pack.observations, profile=profile
                        )
                    published = await agent.wait_published(result.event.event_id, 20.0)
                    assert published.delivered, f"pack {index} not acknowledged by the broker"
                    e = result.event
                    results.append(
                        (
                            e.event_id,
                            pack.label_code,
                            e.triage.transport_class,
                            e.triage.disposition,
                        )
                    )
                statuses.append(
                    await asyncio.to_thread(retained_status, broker, agent.topics.status)
                )
            # a clean stop publishes "offline" itself (no Will on a clean disconnect)
            statuses.append(await asyncio.to_thread(retained_status, broker, agent.topics.status))
        finally:
            await bench.stop()

    try:
        asyncio.run(asyncio.wait_for(main(), 120))
        ids = [r[0] for r in results]
        evidence_keys = [f"evidence:{i}" for i in ids]
        assert sub.wait_for(ids + evidence_keys, timeout=30) == set()
        assert not [k for k in sub.counts if k.startswith(("BAD", "OTHER"))], sub.counts
        events = verified_events(sub, files.trust)
        photos = evidence_payloads(sub)
        topics = {topic for topic, _, _ in sub.messages}
        for (event_id, code, klass, disposition), pack in zip(results, DEMO_PACKS, strict=True):
            event = events[event_id]
            assert (event.site, event.station) == (SITE, STATION)
            assert event.kid == files.kid_hex
            assert event.pack.pack_code == code, pack.title
            assert (event.triage.transport_class, event.triage.disposition) == (klass, disposition)
            assert (klass, disposition) == (pack.expect_class, pack.expect_disposition), pack.title
            # the evidence JPEG on its own topic is the one the signed event references
            (ev,) = event.evidence
            photo = photos[event_id]
            assert f"battrace/v1/{SITE}/{STATION}/evidence/{event_id}" in topics
            assert f"battrace/v1/{SITE}/{STATION}/event" in topics
            assert photo[:2] == b"\xff\xd8"
            assert hashlib.sha256(photo).hexdigest() == ev.sha256 and len(photo) == ev.size
        # mismatch pack: label and BMS disagree -> flagged, label's code kept
        mismatch = events[results[2][0]]
        failed = {c.name for c in mismatch.checks if c.status == "fail"}
        assert {"label_vs_bms.manufacturer", "label_vs_bms.battery_type"} <= failed
        # the silent BMS yields a reading with the reason, not a crash
        silent = events[results[3][0]]
        assert silent.readings.bms is not None and silent.readings.bms.status == "failed"
        assert silent.readings.bms.problems
        # sequence numbers order the events of this boot
        assert [events[i].seq for i in ids] == sorted(events[i].seq for i in ids)
        assert statuses[0].get("state") == "online"
        assert statuses[1].get("state") == "offline"
    finally:
        sub.close()
