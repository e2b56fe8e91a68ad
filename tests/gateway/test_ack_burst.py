"""Acks sent as a burst (one paho wake-up per batch) all reach the site broker."""

from __future__ import annotations

import pytest

from edge_agent.gateway.pipeline import Gateway
from tests.support.gateway import Rig, publish_all, station_client, wait_until
from tests.support.mosquitto import RecordingSubscriber

pytestmark = pytest.mark.timeout(120)


def _started(rig: Rig) -> Gateway:
    gw = Gateway(rig.settings())
    gw.start()
    assert gw.site.subscribed.wait(20)
    return gw


def test_a_batch_of_acks_leaves_nothing_to_redeliver(
    rig: Rig, recorder: RecordingSubscriber
) -> None:
    st = rig.stations["st02"]
    client = station_client(rig.pki, rig.site.port, "st02")
    try:
        gw = _started(rig)
        sock_pair = gw.site._client._sockpairW
        events = [st.next_event() for _ in range(60)]
        publish_all(client, [(st.topic, signed) for _, signed in events])
        keys = {f"event:{e.event_id}" for e, _ in events}
        assert recorder.wait_for(keys, 60) == set()
        # the wake-up socket is back in place after the bursts
        assert gw.site._client._sockpairW is sock_pair and sock_pair is not None
        gw.stop()
        # Had any PUBACK to the site broker been left unsent, the restarted gateway would get
        # that event again and count a duplicate.
        gw = _started(rig)
        last, last_signed = st.next_event()
        publish_all(client, [(st.topic, last_signed)])
        assert recorder.wait_for({f"event:{last.event_id}"}, 30) == set()
        registry = gw.metrics.registry
        assert wait_until(
            lambda: registry.get_sample_value("gateway_accepted_total", {"kind": "event"}) == 1
        )
        assert registry.get_sample_value("gateway_rejected_total", {"reason": "duplicate"}) is None
        gw.stop()
    finally:
        client.disconnect()
        client.loop_stop()
    assert len(recorder.counts) == 61 and set(recorder.counts.values()) == {1}
