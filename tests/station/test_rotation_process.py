"""Key rotation end to end with processes: ``edge-agent run`` (station), ``edge-agent gateway``,
``edge-agent keys rotate`` in the middle of a steady stream of identifications, real Mosquitto
site and upstream brokers. Nothing may be lost or rejected."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator

import cbor2
import pytest

from edge_agent.event_codec import decode_event, event_from_plain
from edge_agent.gateway.deadletters import DeadLetterStore
from edge_agent.signing.events import verify_event
from edge_agent.signing.trust import TrustStore
from edge_agent.station.control import request_identify
from tests.station.procs import Service, run_cli
from tests.station.test_receipts_process import Site, site  # noqa: F401  (the rig fixture)
from tests.support.gateway import wait_until
from tests.support.mosquitto import RecordingSubscriber
from tests.support.station import SITE, STATION

pytestmark = pytest.mark.timeout(600)
KEY_TOPIC = f"cloud/v1/{SITE}/{STATION}/key"


def upstream_key(topic: str, payload: bytes) -> str:
    """event:<id>@<kid> for events (unverified here, verified at the end), the topic else."""
    if topic.endswith("/event"):
        event = decode_event(cbor2.loads(payload).value[2])
        return f"event:{event.event_id}@{event.kid}"
    return topic


@pytest.fixture
def upstream(site: Site) -> Iterator[RecordingSubscriber]:  # noqa: F811
    rec = RecordingSubscriber(site.upstream, "cloud/v1/#", client_id="rot-up", key_of=upstream_key)
    yield rec
    rec.close()


class Stream:
    """Identifications one after another over the control socket until stopped."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.ids: list[tuple[str, str]] = []  # (event_id, kid)
        self.errors: list[object] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        async def loop() -> None:
            while not self._stop.is_set():
                answer = await request_identify(self.service.socket, [], 0.0)
                if not answer.get("ok"):
                    self.errors.append(answer)
                    return
                event = event_from_plain(answer["event"])
                self.ids.append((event.event_id, event.kid))

        try:
            asyncio.run(loop())
        except Exception as exc:  # reported by the test
            self.errors.append(exc)

    def count(self, kid: str | None = None) -> int:
        return sum(1 for _, k in list(self.ids) if kid is None or k == kid)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)
        assert not self._thread.is_alive()


def test_rotation_in_a_steady_stream_loses_and_rejects_none(
    site: Site,  # noqa: F811
    upstream: RecordingSubscriber,
) -> None:
    old_kid = site.files.kid_hex
    station = site.start_station()
    stream = Stream(station)
    try:
        assert wait_until(lambda: stream.count() >= 10, 60), stream.errors
        rotated = run_cli(site.config, "keys", "rotate", "--json")
        assert rotated.returncode == 0, rotated.stderr
        answer = json.loads(rotated.stdout)
        new_kid = answer["new_kid"]
        assert (answer["old_kid"], answer["switched"]) == (old_kid, False)
        # the service switches when the gateway's receipt accepts the statement
        assert wait_until(lambda: stream.count(new_kid) >= 10, 120), (stream.errors, stream.ids)
        second = run_cli(site.config, "keys", "rotate", "--status", "--json")
        status = json.loads(second.stdout)
        assert status["active"] == new_kid and status["pending"] is None
        (retired,) = status["retired"]
        assert (retired["kid"], retired["rotated_to"]) == (old_kid, new_kid)
    finally:
        stream.stop()
    assert not stream.errors, stream.errors
    try:
        # after a restart the station still signs with the new key
        station.close()
        station = site.start_station()
        answer = asyncio.run(request_identify(station.socket, [], 20.0))
        assert answer["ok"] and answer["event"]["kid"] == new_kid
        stream.ids.append((answer["event"]["event_id"], new_kid))
        kids = [k for _, k in stream.ids]
        # a steady stream: old-key events, then only new-key ones
        assert kids == sorted(kids, key=lambda k: k == new_kid)
        assert kids.count(old_kid) >= 10 and kids.count(new_kid) >= 11
        expected = [f"event:{i}@{k}" for i, k in stream.ids]
        assert not upstream.wait_for([*expected, KEY_TOPIC], 120)
        assert wait_until(site.outbox_empty, 60)
    finally:
        station.close()
    events = {k: n for k, n in upstream.counts.items() if k.startswith("event:")}
    assert events == dict.fromkeys(expected, 1)  # every identification once, nothing else
    assert upstream.counts[KEY_TOPIC] == 1
    # the gateway rejected nothing (no dead letters) and recorded the chain
    dead = DeadLetterStore(site.root / "gateway" / "deadletters.sqlite3", create=False)
    try:
        assert dead.rows(include_accepted=True) == []
    finally:
        dead.close()
    trust = TrustStore.load(site.files.root / "trust.json")
    old_entry, new_entry = trust.entry(old_kid), trust.entry(new_kid)
    assert old_entry is not None and new_entry is not None
    assert old_entry.rotated_to == new_kid and new_entry.rotated_from == old_kid
    assert old_entry.not_after is not None  # ends after the overlap
    # every event that went upstream verifies against the chain the gateway recorded
    for topic, payload, _retain in list(upstream.messages):
        if topic.endswith("/event"):
            verify_event(payload, trust)
    # the old private key stays until its overlap has ended, then `keys retire` deletes it
    kept = run_cli(site.config, "keys", "retire")
    assert kept.returncode == 0 and f"kept {old_kid}" in kept.stdout
    assert (site.files.key_dir / "retired" / f"{old_kid}.key.pem").exists()
    gone = run_cli(site.config, "keys", "retire", "--force")
    assert gone.returncode == 0 and f"retired {old_kid}" in gone.stdout
    assert not (site.files.key_dir / "retired" / f"{old_kid}.key.pem").exists()
    assert (site.files.key_dir / "retired" / f"{old_kid}.pub.pem").exists()
