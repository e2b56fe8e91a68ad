"""Regressions found by the station tests in waiting for an event's PUBACK.

1. A PUBACK that arrives before ``OutboxPublisher.submit`` has registered the committed rows
   (the drainer sees a row as soon as it is committed) left the event's future unresolved, so
   ``wait_published`` reported "not published" for a delivered event (1 in ~200 back-to-back
   identifications in bench_station).
2. A timed-out ``wait_published`` cancelled the delivery future; later waits then raised
   CancelledError (covered in test_faults.test_broker_down_during_identifications).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

from edge_agent.uplink.outbox import Outbox, OutboxMessage
from edge_agent.uplink.publisher import OutboxPublisher
from edge_agent.uplink.settings import MqttSettings
from edge_agent.uplink.topics import StationTopics
from tests.support.mosquitto import MosquittoBroker, mosquitto_broker

__all__ = ["mosquitto_broker"]
TOPICS = StationTopics("site-1", "bench-1")


class SlowReturnOutbox(Outbox):
    """Commits, then returns late: as if the submitting thread lost the CPU right after."""

    def add_many(self, messages: Sequence[OutboxMessage]) -> list[int]:
        ids = super().add_many(messages)
        time.sleep(0.5)
        return ids


def test_puback_before_submit_registers_still_resolves(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    outbox = SlowReturnOutbox(tmp_path / "o.db")
    settings = MqttSettings(host=mosquitto_broker.host, port=mosquitto_broker.port)
    pub = OutboxPublisher(outbox, settings, client_id="race", rescan_s=0.01)
    pub.start()
    try:
        assert pub.link.wait_connected(10)

        async def main() -> None:
            for i in range(2):
                key = f"evt-{i}"
                photo = OutboxMessage(TOPICS.evidence(key), b"\xff\xd8photo", key)
                # another wake-up (an ack, a rescan) lets the drainer find the committed rows
                fut = await pub.asubmit(TOPICS.event, b"event", key, companions=[photo])
                assert pub.stats.published == 2 * (i + 1)  # delivered while submit slept
                latency = await pub.wait_delivered(key, 5.0)
                assert fut.done() and latency >= 0

        asyncio.run(main())
        assert pub.wait_idle(10) and outbox.depth == 0
    finally:
        pub.stop()
        outbox.close()
