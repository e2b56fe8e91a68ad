"""SIGTERM of ``edge-agent run`` while it drains a backlog: nothing is published twice.

Issue 13: the station's graceful stop waits for the PUBACKs of the rows in flight and commits
every PUBACK it received before it disconnects, so a restart re-sends only what the broker
never acknowledged. The backlog is written to the station's outbox before each start (as a
station that was offline would have it); the broker's subscriber counts each key.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from edge_agent.uplink.outbox import Outbox, OutboxMessage
from edge_agent.uplink.topics import StationTopics
from tests.station.procs import Service
from tests.support.mosquitto import MosquittoBroker, RecordingSubscriber, free_port
from tests.support.station import SITE, STATION, station_files, station_plain, write_config

pytestmark = pytest.mark.timeout(600)

TRIALS = 5
BACKLOG = 600
TOPICS = StationTopics(SITE, STATION)


def _key(topic: str, payload: bytes) -> str:
    return payload.split(b"|", 1)[0].decode() if topic == TOPICS.event else "other"


def _wait(predicate: object, timeout: float) -> bool:
    import time

    assert callable(predicate)
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def test_sigterm_while_draining_publishes_each_row_once(tmp_path: Path) -> None:
    broker = MosquittoBroker(tmp_path / "mosquitto")
    broker.start()
    sub = RecordingSubscriber(broker, "battrace/v1/#", key_of=_key)
    files = station_files(tmp_path / "station")
    plain = station_plain(files, broker, metrics={"port": free_port()})
    config = write_config(tmp_path / "edge-agent.toml", plain)
    outbox_file = files.data_dir / "outbox.sqlite3"
    all_keys: set[str] = set()
    stops_mid_burst = 0
    try:
        for trial in range(TRIALS):
            keys = [f"t{trial}-{i}" for i in range(BACKLOG)]
            all_keys |= set(keys)
            outbox = Outbox(outbox_file)
            outbox.add_many(
                [OutboxMessage(TOPICS.event, f"{k}|".encode() + b"x" * 2000, k) for k in keys]
            )
            outbox.close()
            service = Service(config, files.data_dir)
            try:
                threshold = 1 + trial * BACKLOG // (TRIALS + 1)
                assert _wait(lambda: len(sub.counts.keys() & set(keys)) >= threshold, 60), (
                    service.err()
                )
                service.signal(signal.SIGTERM)
                assert service.wait(30) == 0, service.err()
            finally:
                service.close()
            if len(sub.counts.keys() & set(keys)) < len(keys):
                stops_mid_burst += 1
            service = Service(config, files.data_dir)
            try:
                assert sub.wait_for(keys, 60) == set(), f"trial {trial}\n{service.err()}"
                # every row may have landed before this service even started: a SIGTERM
                # during its imports ends it by the default action (-15), not by our handler
                service.wait_ready()
                service.signal(signal.SIGTERM)
                assert service.wait(30) == 0, service.err()
            finally:
                service.close()
            outbox = Outbox(outbox_file)
            depth = outbox.depth
            outbox.close()
            assert depth == 0, f"trial {trial}: {depth} delivered rows left\n{service.err()}"
    finally:
        sub.close()
        broker.kill()
    twice = {k: n for k, n in sub.counts.items() if k in all_keys and n != 1}
    assert twice == {}, f"{len(twice)} rows published more than once: {sorted(twice)[:10]}"
    assert stops_mid_burst >= TRIALS // 2, f"only {stops_mid_burst} stops hit a running drain"
