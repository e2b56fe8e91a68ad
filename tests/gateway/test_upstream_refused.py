"""Fault test (issue 13, 1) for the gateway: its upstream broker is down when it starts, then
comes up with an ACL that refuses the gateway's topics. For protocol auto, 5 and 3.1.1 the
admitted event stays in the gateway's outbox (MQTT 5: PUBACK 0x87 "Not authorized", row
``refused``; 3.1.1: Mosquitto drops it and still sends PUBACK, so only the ingest's receipt can
tell: with upstream receipts required the row stays ``sent`` and is sent again after
``upstream_receipt_timeout_s``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from edge_agent.gateway.pipeline import Gateway
from edge_agent.uplink.mqtt import wait_until
from edge_agent.uplink.outbox import Outbox
from tests.support.gateway import (
    GW_STATIONS,
    SITE,
    SimStation,
    gateway_settings,
    publish_all,
    site_broker,
    station_client,
    trust_stations,
)
from tests.support.ingest_receipts import ingest_receipt_trust
from tests.support.mosquitto import MosquittoBroker, RecordingSubscriber, make_tls_material

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("protocol", ["auto", "5", "3.1.1"])
def test_upstream_down_at_start_then_refusing_keeps_the_event_in_the_gateway_outbox(
    tmp_path: Path, pki: Path, protocol: str
) -> None:
    site = site_broker(tmp_path / "site", pki)
    site.start()
    # upstream: TLS, anonymous clients may only read; down when the gateway starts
    upstream = MosquittoBroker(
        tmp_path / "upstream", tls=make_tls_material(tmp_path / "up-tls"), acl="topic read #\n"
    )
    station = SimStation(SITE, GW_STATIONS[0], tmp_path / "keys" / GW_STATIONS[0])
    trust_stations(tmp_path / "trust.json", [station])
    trust = ingest_receipt_trust(tmp_path)  # the ingest's receipt key: upstream receipts on
    settings = gateway_settings(
        tmp_path,
        pki,
        site.port,
        upstream,
        upstream_receipts="required",
        upstream_receipts_trust=str(trust),
        upstream_receipt_timeout_s=0.5,
    )
    settings = dataclasses.replace(
        settings,
        upstream_mqtt=dataclasses.replace(
            settings.upstream_mqtt,
            protocol=protocol,  # type: ignore[arg-type]
            retry_min_s=30.0,
        ),
    )
    gw = Gateway(settings)
    client = station_client(pki, site.port, station.station)
    recorder: RecordingSubscriber | None = None
    stopped = False
    try:
        gw.start()
        assert gw.site.subscribed.wait(20)
        event, signed = station.next_event()
        publish_all(client, [(station.topic, signed)])
        assert wait_until(lambda: gw.outbox.depth == 1, 20), gw.outbox.depth
        assert not gw.upstream.link.connected
        upstream.start()  # the same port, with the ACL
        recorder = RecordingSubscriber(upstream, "cloud/v1/#")
        assert gw.upstream.link.wait_connected(30)
        assert gw.upstream.link.protocol == ("3.1.1" if protocol == "3.1.1" else "5")

        def answered() -> bool:
            rows = gw.outbox.rows()
            if protocol == "3.1.1":  # PUBACKed (the ACL dropped it), then sent again
                return not rows or (rows[0].state == "sent" and rows[0].attempts >= 2)
            return not rows or bool(rows[0].last_error)

        assert wait_until(answered, 30), gw.outbox.rows()
        stopped = True
        gw.stop()
        with Outbox(settings.outbox_path, settings.outbox) as outbox:  # as after a restart
            rows = outbox.rows()
        assert [r.key for r in rows] == [event.event_id], "the refused event left the outbox"
        if protocol == "3.1.1":
            assert (rows[0].state, rows[0].last_error) == ("sent", None)
        else:
            assert (rows[0].state, rows[0].last_error) == ("refused", "Not authorized")
        assert sum(recorder.counts.values()) == 0
    finally:
        client.disconnect()
        client.loop_stop()
        if not stopped:
            gw.stop()
        if recorder is not None:
            recorder.close()
        site.stop()
        upstream.kill()
