"""Receipts end to end with processes: ``edge-agent run`` (station) and ``edge-agent gateway``,
real Mosquitto site and upstream brokers. Each test ends with every identification accepted
upstream exactly once (counted by event_id) and the station outbox empty.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge_agent.dataform import from_plain
from edge_agent.errors import EdgeAgentError
from edge_agent.event_codec import event_from_plain
from edge_agent.gateway.settings import GatewaySettings
from edge_agent.signing.keys import PUBLIC_KEY_FILE, init_keys
from edge_agent.signing.trust import TrustStore
from edge_agent.station.control import request_identify
from edge_agent.uplink.outbox import Outbox
from tests.station.procs import Service
from tests.support.gateway import GatewayProcess, gateway_config_file, wait_until
from tests.support.mosquitto import MosquittoBroker, RecordingSubscriber
from tests.support.station import (
    SITE,
    StationFiles,
    event_key,
    station_files,
    station_plain,
    write_config,
)

pytestmark = pytest.mark.timeout(600)


@dataclass
class Site:
    root: Path
    site: MosquittoBroker
    upstream: MosquittoBroker
    files: StationFiles
    config: Path
    gateway: GatewayProcess
    upstream_events: RecordingSubscriber

    def start_station(self) -> Service:
        service = Service(self.config, self.files.data_dir)
        service.wait_ready(60)
        return service

    def outbox(self) -> Outbox:
        return Outbox(self.files.data_dir / "outbox.sqlite3")

    def outbox_empty(self) -> bool:
        with self.outbox() as ob:
            return ob.depth == 0

    def gateway_ready(self) -> bool:
        text = self.gateway.log.read_text(errors="replace") if self.gateway.log.exists() else ""
        return text.count("gateway ready") >= self.gateway_starts

    gateway_starts: int = 0

    def start_gateway(self) -> None:
        self.gateway_starts += 1
        self.gateway.start()
        assert wait_until(self.gateway_ready, 60), self.gateway.log.read_text()[-3000:]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    site_broker = MosquittoBroker(tmp_path / "site")
    site_broker.start()
    upstream = MosquittoBroker(tmp_path / "upstream")
    upstream.start()
    files = station_files(tmp_path / "station")
    gw_keys = tmp_path / "gateway-keys"
    init_keys(gw_keys)
    receipts_trust = TrustStore.load(tmp_path / "receipts-trust.json", create=True)
    receipts_trust.add((gw_keys / PUBLIC_KEY_FILE).read_bytes(), station="", site=SITE)
    receipts_trust.save()
    plain = station_plain(
        files,
        site_broker,
        uplink={
            "receipts": "required",
            "receipts_trust": str(tmp_path / "receipts-trust.json"),
            "receipt_timeout_s": 1.0,
            "outbox": {"min_free_disk_bytes": 0},
        },
    )
    config = write_config(tmp_path / "station.toml", plain)
    settings = from_plain(
        GatewaySettings,
        {
            "site_mqtt": {
                "host": site_broker.host,
                "port": site_broker.port,
                "client_id": "gw",
                "reconnect_min_s": 0.1,
                "reconnect_max_s": 0.5,
            },
            "upstream_mqtt": {
                "host": upstream.host,
                "port": upstream.port,
                "client_id": "gw-up",
                "reconnect_min_s": 0.1,
                "reconnect_max_s": 0.5,
            },
            "upstream_prefix": "cloud/v1",
            "trust_store": str(files.root / "trust.json"),
            "data_dir": str(tmp_path / "gateway"),
            "receipt_key_dir": str(gw_keys),
            "outbox": {"min_free_disk_bytes": 0},
        },
    )
    gw_config = gateway_config_file(tmp_path / "gateway.toml", settings)
    gateway = GatewayProcess(gw_config, tmp_path / "gateway.log")
    recorder = RecordingSubscriber(
        upstream, "cloud/v1/+/+/event", client_id="upstream-rec", key_of=event_key(files.trust)
    )
    rig = Site(tmp_path, site_broker, upstream, files, config, gateway, recorder)
    try:
        rig.start_gateway()
        yield rig
    finally:
        recorder.close()
        gateway.kill()
        site_broker.kill()
        upstream.kill()


def identify(service: Service, n: int) -> list[str]:
    """``n`` identifications over the control socket; their event ids."""

    async def run() -> list[str]:
        ids = []
        for _ in range(n):
            answer = await request_identify(service.socket, [], 20.0)
            assert answer["ok"], answer
            ids.append(event_from_plain(answer["event"]).event_id)
        return ids

    return asyncio.run(run())


def epochs(rig: Site) -> dict[str, int]:
    """event_id -> boot_epoch of what arrived upstream (the last copy of each)."""
    import cbor2

    from edge_agent.event_codec import decode_event

    out = {}
    for _topic, payload, _retain in list(rig.upstream_events.messages):
        event = decode_event(cbor2.loads(payload).value[2])
        out[event.event_id] = event.boot_epoch
    return out


def exactly_once(rig: Site, ids: list[str]) -> None:
    """Every id upstream exactly once, nothing else, and the station outbox empty."""
    assert not rig.upstream_events.wait_for(ids, 60)
    assert wait_until(rig.outbox_empty, 60)
    counts = rig.upstream_events.counts
    assert {k: v for k, v in counts.items() if v != 1} == {}
    assert set(counts) == set(ids)


def test_lost_boot_epoch_events_are_re_signed_and_accepted_once(site: Site) -> None:
    station = site.start_station()
    try:
        first = identify(station, 3)
        exactly_once(site, first)
    finally:
        station.close()
    # the epoch is lost everywhere: the station starts again at epoch 1
    (site.files.data_dir / "boot_epoch").unlink()
    (site.files.key_dir / "boot_epoch").unlink()
    station = site.start_station()
    try:
        second = identify(station, 3)
        exactly_once(site, first + second)
    finally:
        station.close()
    seen = epochs(site)
    old = max(seen[i] for i in first)
    # the held events were re-signed above the gateway's epoch, keeping their event ids
    assert all(seen[i] > old for i in second), seen
    # ... stored durably in both places, so the next start continues above it
    moved = max(seen[i] for i in second)
    assert int((site.files.data_dir / "boot_epoch").read_text()) == moved
    assert int((site.files.key_dir / "boot_epoch").read_text()) == moved


def test_data_folder_lost_with_the_key_kept_continues_the_epoch(site: Site) -> None:
    station = site.start_station()
    try:
        first = identify(station, 2)
        exactly_once(site, first)
    finally:
        station.close()
    shutil.rmtree(site.files.data_dir)
    station = site.start_station()
    try:
        second = identify(station, 2)
        exactly_once(site, first + second)
    finally:
        station.close()
    seen = epochs(site)
    assert min(seen[i] for i in second) == max(seen[i] for i in first) + 1


def test_sigkill_of_station_and_gateway_at_random_points_loses_nothing(site: Site) -> None:
    rng = random.Random(13)
    ids: list[str] = []
    station = site.start_station()
    trials = {"station": 0, "gateway": 0}
    try:
        for trial in range(40):
            target = "station" if trial % 2 == 0 else "gateway"
            delay = rng.uniform(0.0, 0.4)

            async def burst(service: Service = station, delay: float = delay) -> list[str]:
                async def one() -> str | None:
                    try:
                        answer = await request_identify(service.socket, [], 5.0)
                    except (EdgeAgentError, OSError, ValueError, json.JSONDecodeError):
                        return None  # killed before it answered: the event may or may not exist
                    return event_from_plain(answer["event"]).event_id if answer["ok"] else None

                tasks = [asyncio.create_task(one()) for _ in range(3)]
                await asyncio.sleep(delay)
                if target == "station":
                    service.signal(signal.SIGKILL)
                else:
                    site.gateway.kill()
                done = await asyncio.gather(*tasks)
                return [i for i in done if i]

            ids.extend(asyncio.run(burst()))
            trials[target] += 1
            if target == "station":
                station.wait(10)
                station = site.start_station()
            else:
                site.start_gateway()
        # what the station committed but never got an answer for is found by its event id
        # upstream; every id answered must be there exactly once
        assert trials == {"station": 20, "gateway": 20}
        assert not site.upstream_events.wait_for(ids, 120)
        assert wait_until(site.outbox_empty, 120)
        counts = site.upstream_events.counts
        unique = set(counts)
        assert set(ids) <= unique
        assert not [k for k in unique if k.startswith(("BAD", "OTHER"))]
        duplicates = {k: v for k, v in counts.items() if v > 1}
        print(
            f"{len(set(ids))} answered, {len(unique)} upstream, {len(duplicates)} forwarded twice"
        )
    finally:
        station.close()
