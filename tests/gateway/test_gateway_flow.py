"""End to end with two real Mosquitto processes: site (hardware/mosquitto config) and upstream."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge_agent.gateway.service import Gateway
from edge_agent.gateway.settings import GatewaySettings
from tests.support.gateway import (
    SITE,
    Broker,
    SimStation,
    event_key,
    gateway_settings,
    make_pki,
    publish_all,
    site_broker,
    station_client,
    trust_stations,
    upstream_broker,
    wait_until,
)
from tests.support.mosquitto import MosquittoBroker, RecordingSubscriber

pytestmark = pytest.mark.timeout(180)
STATIONS = ["st01", "st02", "st03"]


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
    return make_pki(tmp_path_factory.mktemp("pki"), STATIONS)


@pytest.fixture
def rig(tmp_path: Path, pki: Path) -> Iterator[Rig]:
    site = site_broker(tmp_path / "site", pki)
    site.start()
    upstream = upstream_broker(tmp_path)
    upstream.start()
    stations = {n: SimStation(SITE, n, tmp_path / "keys" / n) for n in STATIONS}
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


def started(settings: GatewaySettings) -> Gateway:
    """A started gateway whose site subscription is in place (its session exists)."""
    gw = Gateway(settings)
    gw.start()
    assert gw.site.subscribed.wait(20)
    return gw


def _rejected(gw: Gateway, reason: str) -> float:
    value = gw.metrics.registry.get_sample_value("gateway_rejected_total", {"reason": reason})
    return value or 0.0


def test_events_from_several_stations_arrive_upstream_once(
    rig: Rig, recorder: RecordingSubscriber
) -> None:
    gw = started(rig.settings())
    clients = {n: station_client(rig.pki, rig.site.port, n) for n in STATIONS}
    sent: list[tuple[str, str, bytes]] = []  # station, event id, signed bytes
    photos: dict[str, bytes] = {}
    try:
        for i in range(15):
            for name, st in rig.stations.items():
                photo = f"jpeg {name} {i}".encode() * 50
                event, signed = st.next_event(evidence=(photo,) if i % 3 == 0 else ())
                items = [(st.topic, signed)]
                if i % 3 == 0:
                    photos[event.event_id] = photo
                    items.append((f"battrace/v1/{SITE}/{name}/evidence/{event.event_id}", photo))
                    if i % 2 == 0:  # evidence first: the gateway holds it until the event
                        items.reverse()
                publish_all(clients[name], items)
                sent.append((name, event.event_id, signed))
        # A station re-sends events whose PUBACK it lost: forwarded once all the same.
        for name, _eid, signed in sent[:5]:
            publish_all(clients[name], [(rig.stations[name].topic, signed)])
        keys = {f"event:{eid}" for _, eid, _ in sent} | {f"evidence:{e}" for e in photos}
        assert recorder.wait_for(keys, timeout=60) == set()
        assert wait_until(lambda: _rejected(gw, "duplicate") == 5, 20)
        assert gw.upstream.wait_idle(20)
    finally:
        for c in clients.values():
            c.disconnect()
            c.loop_stop()
        gw.stop()
    assert all(recorder.counts[k] == 1 for k in keys), recorder.counts
    assert len(recorder.messages) == len(keys)
    got = [p for t, p, _ in recorder.messages if t.endswith("/event")]
    assert sorted(got) == sorted(s for _, _, s in sent)  # byte for byte, signature intact
    for topic, payload, _ in recorder.messages:
        if "/evidence/" in topic:
            assert payload == photos[topic.rsplit("/", 1)[1]]
            assert topic.startswith(f"cloud/v1/{SITE}/st0")
    assert gw.metrics.registry.get_sample_value("gateway_accepted_total", {"kind": "event"}) == 45
    assert gw.metrics.registry.get_sample_value("gateway_accepted_total", {"kind": "evidence"}) == 15
