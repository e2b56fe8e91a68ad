"""Station-level faults with a real Mosquitto: broker outage, agent SIGKILL before PUBACK, a full
outbox, broken sources and bad technician input.

Delivery assertions: every committed event_id reaches the subscriber (duplicates on the wire
are allowed, receivers de-duplicate by event id), none is missing, nothing unknown arrives.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import pytest

from edge_agent.config import config_from_plain
from edge_agent.errors import StationError
from edge_agent.model import BmsReading, LabelReading, WeightReading
from edge_agent.signing.events import verify_event
from edge_agent.station.agent import StationAgent
from edge_agent.station.control import request_identify
from edge_agent.station.workflow import StationSources
from edge_agent.uplink.outbox import Outbox
from tests.station.procs import Service, run_cli
from tests.support.mosquitto import MosquittoBroker, RecordingSubscriber, mosquitto_broker
from tests.support.station import (
    event_key,
    healthy_bms,
    instant_sources,
    station_files,
    station_plain,
    verified_events,
    write_config,
)

__all__ = ["mosquitto_broker"]


def _outbox_keys(data_dir: Path) -> list[str]:
    with Outbox(data_dir / "outbox.sqlite3") as outbox:
        return [row.key for row in outbox.rows(limit=1000)]


def _assert_delivered_once_each(sub: RecordingSubscriber, committed: list[str]) -> None:
    assert sub.wait_for(committed, timeout=60) == set(), "committed events missing"
    events = {k for k in sub.counts if not k.startswith(("evidence:", "status"))}
    assert events == set(committed), f"unexpected: {sorted(events - set(committed))[:5]}"


def test_broker_down_during_identifications(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    broker = mosquitto_broker
    files = station_files(tmp_path)
    sub = RecordingSubscriber(broker, "battrace/v1/+/+/event", key_of=event_key(files.trust))
    config = config_from_plain(station_plain(files, broker))
    committed: list[str] = []

    async def main() -> None:
        async with StationAgent(config, sources=instant_sources()) as agent:
            assert agent.outbox is not None
            for _ in range(3):
                result = await agent.identify()
                committed.append(result.event.event_id)
                assert (await agent.wait_published(result.event.event_id, 20)).delivered
            await asyncio.to_thread(broker.stop)
            for i in range(15):
                result = await agent.identify()
                committed.append(result.event.event_id)
                # event + evidence photo committed per identification, nothing acknowledged
                assert agent.outbox.depth == 2 * (i + 1)
            # a timed-out wait must not spoil later waits for the same event
            assert not (await agent.wait_published(committed[-1], 0.2)).delivered
            await asyncio.to_thread(broker.start)
            for event_id in committed[3:]:
                assert (await agent.wait_published(event_id, 60)).delivered
            assert agent.publisher is not None
            assert await asyncio.to_thread(agent.publisher.wait_idle, 30)
            assert agent.outbox.depth == 0

    try:
        asyncio.run(asyncio.wait_for(main(), 120))
        _assert_delivered_once_each(sub, committed)
        events = verified_events(sub, files.trust)
        seqs = [events[i].seq for i in committed]
        assert seqs == list(range(1, len(committed) + 1))
    finally:
        sub.close()


def test_agent_sigkilled_after_identify_before_puback_delivers_after_restart(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    broker = mosquitto_broker
    assert broker.proc is not None
    files = station_files(tmp_path)
    sub = RecordingSubscriber(broker, "battrace/v1/+/+/event", key_of=event_key(files.trust))
    config = write_config(tmp_path / "agent.toml", station_plain(files, broker))
    committed: list[str] = []
    trials = 10
    try:
        for trial in range(trials):
            service = Service(config, files.data_dir)
            try:
                service.wait_ready()
                frozen = trial % 2 == 0  # a stopped broker cannot PUBACK: strictly before it
                if frozen:
                    os.kill(broker.proc.pid, signal.SIGSTOP)
                answer = asyncio.run(request_identify(service.socket, [], 0.0))
                assert answer["ok"], answer
                service.signal(signal.SIGKILL)  # right after identify returned
                assert service.wait(10) == -signal.SIGKILL
            finally:
                os.kill(broker.proc.pid, signal.SIGCONT)
                service.close()
            committed.append(answer["event_id"])
            if frozen:
                assert answer["event_id"] in _outbox_keys(files.data_dir)
        # the last restart drains what the last killed agent left behind
        service = Service(config, files.data_dir)
        try:
            service.wait_ready()
            _assert_delivered_once_each(sub, committed)
            # the subscriber may already hold a re-sent event from a killed agent (the frozen
            # broker delivers it on SIGCONT) before this agent's own re-send is acknowledged:
            # wait for the outbox to drain, not only for the subscriber
            deadline = time.monotonic() + 60
            while _outbox_keys(files.data_dir) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert _outbox_keys(files.data_dir) == []
            service.signal(signal.SIGTERM)
            assert service.wait(30) == 0, service.err()
        finally:
            service.close()
        assert _outbox_keys(files.data_dir) == []
        # every agent start is a new boot epoch: (boot_epoch, seq) orders the events
        events = verified_events(sub, files.trust)
        assert [events[i].boot_epoch for i in committed] == list(range(1, trials + 1))
    finally:
        sub.close()


def test_full_outbox_refuses_identify_and_keeps_stored_events(tmp_path: Path) -> None:
    files = station_files(tmp_path)
    broker = MosquittoBroker(tmp_path / "mosquitto")  # never started: nothing drains
    plain = station_plain(files, broker, uplink={"outbox": {"max_events": 2}})
    config = write_config(tmp_path / "agent.toml", plain)
    stored: list[str] = []
    for _ in range(2):
        done = run_cli(config, "identify", "--json", "--wait", "0.1")
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        assert answer["published"] is False
        stored.append(answer["event"]["event_id"])
    refused = run_cli(config, "identify", "--json", "--wait", "0.1")
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert "outbox full: 2 rows stored" in refused.stderr
    assert "limit max_events=2" in refused.stderr
    assert "nothing was deleted" in refused.stderr
    # the service refuses the same way over its control socket, and keeps serving
    service = Service(config, files.data_dir)
    try:
        service.wait_ready()
        for _ in range(2):
            answer = asyncio.run(request_identify(service.socket, [], 0.1))
            assert answer["ok"] is False
            assert "outbox full: 2 rows stored" in str(answer["error"])
        client = run_cli(config, "identify", "--wait", "0.1")
        assert client.returncode == 1 and "error: outbox full" in client.stderr
        service.signal(signal.SIGTERM)
        assert service.wait(30) == 0, service.err()
    finally:
        service.close()
    with Outbox(files.data_dir / "outbox.sqlite3") as outbox:
        rows = outbox.rows()
    assert [r.key for r in rows] == stored
    for row in rows:  # intact: still verifiable, byte for byte
        assert verify_event(row.payload, files.trust).event.event_id == row.key


def test_raising_and_hanging_sources_give_reasons_within_the_policy_timeout(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    files = station_files(tmp_path)
    timeouts = {"bms": 0.6, "label": 0.4, "weight": 0.5}
    config = config_from_plain(
        station_plain(
            files,
            mosquitto_broker,
            station={k: {"timeout_s": v, "retries": 1} for k, v in timeouts.items()},
        )
    )
    calls = {"bms": 0, "weight": 0}

    async def bms_raises(timeout: float) -> BmsReading:
        calls["bms"] += 1
        raise RuntimeError("CAN controller in bus-off")

    async def label_hangs(timeout: float) -> tuple[LabelReading, bytes | None]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def weight_blocks_a_thread(timeout: float) -> WeightReading:
        calls["weight"] += 1
        await asyncio.to_thread(time.sleep, 1.5)  # a driver stuck in a blocking call
        raise AssertionError("unreachable")

    broken = StationSources(bms=bms_raises, label=label_hangs, weight=weight_blocks_a_thread)

    async def main() -> None:
        async with StationAgent(config, sources=broken) as agent:
            t0 = time.perf_counter()
            result = await agent.identify()
            elapsed = time.perf_counter() - t0
            assert elapsed < max(timeouts.values()) + 1.0, elapsed
            readings = result.event.readings
            assert readings.bms is not None and readings.bms.status == "failed"
            assert readings.bms.problems == ("RuntimeError: CAN controller in bus-off",)
            assert calls["bms"] == 2  # one retry, as the policy says
            assert readings.label is not None and readings.label.status == "failed"
            assert readings.label.problems == ("no result within 0.4 s",)
            assert readings.weight is not None and readings.weight.status == "failed"
            assert readings.weight.problems == ("no result within 0.5 s",)
            assert calls["weight"] == 1  # a timeout is not retried past the deadline
            assert result.event.triage.transport_class == "undiagnosable"
            assert (await agent.wait_published(result.event.event_id, 20)).delivered

    asyncio.run(asyncio.wait_for(main(), 60))


def test_failed_attempt_is_retried_within_the_policy(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    files = station_files(tmp_path)
    config = config_from_plain(
        station_plain(files, mosquitto_broker, station={"bms": {"timeout_s": 2.0, "retries": 2}})
    )
    attempts: list[float] = []

    async def flaky_bms(timeout: float) -> BmsReading:
        attempts.append(timeout)
        if len(attempts) == 1:
            return BmsReading(status="failed", problems=("no BRM within 1 s",))
        if len(attempts) == 2:
            raise ConnectionResetError("adapter reset")
        return healthy_bms()

    sources = instant_sources()
    sources = StationSources(
        bms=flaky_bms, label=sources.label, weight=sources.weight, sensors=sources.sensors
    )

    async def main() -> None:
        async with StationAgent(config, sources=sources) as agent:
            result = await agent.identify()
            assert result.event.readings.bms is not None
            assert result.event.readings.bms.status == "ok"
            assert len(attempts) == 3
            assert all(0 < t <= 2.0 for t in attempts)  # each attempt gets what is left
            assert attempts == sorted(attempts, reverse=True)

    asyncio.run(asyncio.wait_for(main(), 60))


def test_unknown_observation_is_refused_before_anything_is_stored(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    files = station_files(tmp_path)
    plain = station_plain(files, mosquitto_broker)
    config = config_from_plain(plain)

    async def main() -> None:
        async with StationAgent(config, sources=instant_sources()) as agent:
            with pytest.raises(StationError, match=r"unknown observation.*sparkles.*known:"):
                await agent.identify(observations=("swelling", "sparkles"))
            assert agent.outbox is not None and agent.outbox.depth == 0
            ok = await agent.identify(observations=(" Swelling ",))
            assert ok.event.observations == ("swelling",)

    asyncio.run(asyncio.wait_for(main(), 60))
    done = run_cli(write_config(tmp_path / "a.toml", plain), "identify", "--observe", "sparkles")
    assert done.returncode == 1
    assert "unknown observation(s) sparkles" in done.stderr
