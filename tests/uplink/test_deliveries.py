"""DeliveryTracker: bounded latency bookkeeping and per-key futures."""

from __future__ import annotations

from edge_agent.uplink import deliveries


def test_delivery_tracker_bounded_and_futures_complete() -> None:
    tracker = deliveries.DeliveryTracker()
    tracker.added(range(deliveries.MAX_TRACKED_ROWS + 50), 1.0)
    assert len(tracker._added_at) == deliveries.MAX_TRACKED_ROWS
    fut = tracker.expect("evt", 2, 0.0)
    tracker.delivered(10**9, "evt", 0.0)
    assert not fut.done()
    tracker.delivered(10**9 + 1, "evt", 0.0)
    assert fut.done() and fut.result() > 0
    refused = tracker.expect("gone", 1, 0.0)
    tracker.forget("gone", 1)
    assert tracker.future("gone") is None and not refused.done()
