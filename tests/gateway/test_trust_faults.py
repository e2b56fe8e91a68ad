"""Issue 13 fault tests (3) and (4) with the gateway as a process and real Mosquitto both sides.

(3) The trust store file is moved away while the gateway runs: the gateway keeps the last good
store (metric 0, one ERROR), events of a key it does not know are kept as dead letters, and
once the key is trusted and the store is back, ``gateway rejected replay`` forwards each of
them upstream exactly once. (4) A revoked key added again is refused (exit 2, one line); with
``--unrevoke`` it is trusted again, the store records who did it, and the events rejected while
it was revoked are replayed once. A gateway whose store is missing does not start.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.gateway import (
    ROOT,
    SITE,
    GatewayProcess,
    Rig,
    SimStation,
    free_port,
    gateway_config_file,
    publish_all,
    station_client,
    wait_until,
)
from tests.support.mosquitto import RecordingSubscriber

pytestmark = pytest.mark.timeout(300)


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``edge-agent gateway --config CONFIG ARGS`` as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "edge_agent", "gateway", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def _metric(port: int, name: str) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def _log_lines(path: Path) -> list[dict[str, object]]:
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


class Running:
    """A gateway process, its config, metrics port and log."""

    def __init__(self, rig: Rig) -> None:
        self.mport = free_port()
        self.config = gateway_config_file(rig.workdir / "gateway.toml", rig.settings(), self.mport)
        self.log = rig.workdir / "gateway.log"
        self.proc = GatewayProcess(self.config, self.log)

    def metric(self, name: str) -> float | None:
        return _metric(self.mport, name)


@pytest.fixture
def running(rig: Rig) -> Iterator[Running]:
    gw = Running(rig)
    gw.proc.start()
    try:
        assert wait_until(lambda: gw.metric("gateway_site_connected") == 1.0, 30)
        yield gw
        assert gw.proc.terminate() == 0
    finally:
        gw.proc.kill()


def test_store_moved_away_keeps_the_last_good_one_and_dead_letters_are_replayed_once(
    rig: Rig, recorder: RecordingSubscriber, running: Running, tmp_path: Path
) -> None:
    store = rig.workdir / "trust.json"
    moved = rig.workdir / "trust.json.moved"
    known = rig.stations["st02"]
    newcomer = SimStation(SITE, "st01", tmp_path / "new-key")  # a new key for st01
    clients = {n: station_client(rig.pki, rig.site.port, n) for n in ("st01", "st02")}
    try:
        store.rename(moved)
        assert wait_until(lambda: running.metric("gateway_trust_store_ok") == 0.0, 30)
        known_events = [known.next_event() for _ in range(20)]
        new_events = [newcomer.next_event() for _ in range(20)]
        publish_all(clients["st02"], [(known.topic, s) for _, s in known_events])
        publish_all(clients["st01"], [(newcomer.topic, s) for _, s in new_events])
        # the last good store still admits the keys it had
        assert recorder.wait_for({f"event:{e.event_id}" for e, _ in known_events}, 30) == set()
        assert wait_until(lambda: running.metric("gateway_dead_letters") == 20.0, 30)
        errors = [
            line
            for line in _log_lines(running.log)
            if line.get("level") == "error" and "trust store unusable" in str(line.get("msg"))
        ]
        assert len(errors) == 1, errors  # once per change, not once per batch
        assert str(store) in str(errors[0]["msg"])
        listed = cli(running.config, "rejected", "list", "--reason", "unknown_kid", "--json")
        assert listed.returncode == 0, listed.stderr
        assert len(listed.stdout.splitlines()) == 20
        # the operator puts the store back and trusts the new key
        moved.rename(store)
        added = cli(
            running.config,
            "trust",
            "add",
            str(newcomer.public_pem),
            "--station",
            "st01",
            "--site",
            SITE,
        )
        assert added.returncode == 0, added.stderr
        assert wait_until(lambda: running.metric("gateway_trust_store_ok") == 1.0, 30)
        replay = cli(running.config, "rejected", "replay", "--reason", "unknown_kid")
        assert replay.returncode == 0, replay.stdout + replay.stderr
        assert replay.stdout.count(" accepted") == 20
        new_keys = {f"event:{e.event_id}" for e, _ in new_events}
        assert recorder.wait_for(new_keys, 30) == set()
        assert wait_until(lambda: running.metric("gateway_upstream_outbox_depth") == 0.0, 30)
        again = cli(running.config, "rejected", "replay", "--all")
        assert again.returncode == 1 and "nothing to replay" in again.stdout
    finally:
        for c in clients.values():
            c.disconnect()
            c.loop_stop()
    all_keys = {f"event:{e.event_id}" for e, _ in known_events + new_events}
    assert {k: recorder.counts[k] for k in all_keys} == dict.fromkeys(all_keys, 1)


def test_revoked_key_added_again_is_refused_then_unrevoked_and_its_events_replayed(
    rig: Rig, recorder: RecordingSubscriber, running: Running
) -> None:
    st = rig.stations["st03"]
    kid = st.signer.kid.hex()
    client = station_client(rig.pki, rig.site.port, "st03")
    try:
        assert cli(running.config, "trust", "revoke", kid).returncode == 0
        events = [st.next_event() for _ in range(10)]
        publish_all(client, [(st.topic, s) for _, s in events])
        assert wait_until(lambda: running.metric("gateway_dead_letters") == 10.0, 30)
        add = ("trust", "add", str(st.public_pem), "--station", "st03", "--site", SITE)
        refused = cli(running.config, *add)
        assert refused.returncode == 2
        assert refused.stderr.splitlines() == [
            f"error: key {kid} is revoked; add it with --unrevoke to trust it again"
        ]
        # the same refusal from `keys trust --add` on the same store
        keys_refused = subprocess.run(
            [
                sys.executable,
                "-m",
                "edge_agent",
                "keys",
                "trust",
                "--store",
                str(rig.workdir / "trust.json"),
                "--add",
                str(st.public_pem),
                "--station",
                "st03",
                "--site",
                SITE,
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=60,
            check=False,
        )
        assert keys_refused.returncode == 2 and len(keys_refused.stderr.splitlines()) == 1
        listed = cli(running.config, "trust", "list")
        row = next(json.loads(r) for r in listed.stdout.splitlines() if kid in r)
        assert row["revoked"] is True and "unrevoked" not in row
        unrevoked = cli(running.config, *add, "--unrevoke", "--by", "shift-lead")
        assert unrevoked.returncode == 0, unrevoked.stderr
        assert unrevoked.stdout.strip() == kid
        listed = cli(running.config, "trust", "list")
        row = next(json.loads(r) for r in listed.stdout.splitlines() if kid in r)
        assert row["revoked"] is False and row["unrevoked_by"] == "shift-lead"
        assert row["unrevoked"].endswith("Z")
        replay = cli(running.config, "rejected", "replay", "--reason", "revoked")
        assert replay.returncode == 0, replay.stdout + replay.stderr
        keys = {f"event:{e.event_id}" for e, _ in events}
        assert recorder.wait_for(keys, 30) == set()
        assert wait_until(lambda: running.metric("gateway_upstream_outbox_depth") == 0.0, 30)
    finally:
        client.disconnect()
        client.loop_stop()
    assert {k: recorder.counts[k] for k in keys} == dict.fromkeys(keys, 1)


def test_gateway_with_a_missing_trust_store_refuses_to_start(rig: Rig) -> None:
    missing = rig.workdir / "nowhere" / "trust.json"
    settings = rig.settings(trust_store=str(missing))
    config = gateway_config_file(rig.workdir / "missing.toml", settings, free_port())
    done = subprocess.run(
        [sys.executable, "-m", "edge_agent", "gateway", "--config", str(config)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"error: trust store {missing} does not exist"]
    assert not (rig.workdir / "data").exists()  # refused before opening any database
