"""`edge-agent keys` and `edge-agent verify` as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.event_codec import event_to_plain
from edge_agent.signing.events import sign_event
from edge_agent.signing.keys import load_signer
from tests.support.signing import ROOT, example_event


def run(
    *args: str, stdin: bytes | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("EDGE_AGENT_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "edge_agent", *args],
        input=stdin,
        capture_output=True,
        env=env,
        cwd=cwd or ROOT,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    """A key created by `keys init`, a trust store made with `keys trust`, one signed event."""
    base = tmp_path_factory.mktemp("cli")
    keys = base / "keys"
    init = run("keys", "init", "--dir", str(keys), "--alg", "p256")
    assert init.returncode == 0, init.stderr
    kid = init.stdout.decode().strip()
    assert len(kid) == 32 and int(kid, 16) >= 0
    assert stat.S_IMODE((keys / "station.key.pem").stat().st_mode) == 0o600
    trust = base / "trust.json"
    added = run(
        "keys",
        "trust",
        "--store",
        str(trust),
        "--add",
        str(keys / "station.pub.pem"),
        "--station",
        "bench-03",
        "--site",
        "recy-suzhou-01",
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout.decode().strip() == kid
    event = example_event(kid)
    message = sign_event(event, load_signer(keys))
    (base / "event.cose").write_bytes(message)
    (base / "event.hex").write_text(message.hex() + "\n")
    (base / "expected.json").write_text(json.dumps(event_to_plain(event)))
    return {"base": base, "keys": keys, "kid": kid, "trust": trust}


def test_init_refuses_to_overwrite(station: dict) -> None:
    again = run("keys", "init", "--dir", str(station["keys"]))
    assert again.returncode == 1
    assert b"already exists" in again.stderr
    assert b"Traceback" not in again.stderr


def test_show(station: dict) -> None:
    shown = run("keys", "show", "--dir", str(station["keys"]), "--json")
    assert shown.returncode == 0, shown.stderr
    info = json.loads(shown.stdout)
    assert info["kid"] == station["kid"]
    assert (info["alg"], info["alg_id"], info["private_key_mode"]) == ("ESP256", -9, "0600")
    legacy = run("keys", "show", "--dir", str(station["keys"]), "--legacy-alg-ids")
    assert b"alg: ES256" in legacy.stdout and f"kid: {station['kid']}".encode() in legacy.stdout


def test_show_uses_the_config_key_dir(station: dict, tmp_path: Path) -> None:
    config = tmp_path / "edge-agent.toml"
    config.write_text(f'[signing]\nkey_dir = "{station["keys"]}"\n')
    shown = run("--config", str(config), "keys", "show")
    assert shown.returncode == 0, shown.stderr
    assert f"kid: {station['kid']}".encode() in shown.stdout


def test_verify_raw_file_prints_the_body(station: dict) -> None:
    result = run("verify", str(station["base"] / "event.cose"), "--trust", str(station["trust"]))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads((station["base"] / "expected.json").read_text())


def test_verify_hex_on_stdin_with_a_pem_and_json_verdict(station: dict) -> None:
    hex_text = (station["base"] / "event.hex").read_bytes()
    result = run(
        "verify", "-", "--trust", str(station["keys"] / "station.pub.pem"), "--json", stdin=hex_text
    )
    assert result.returncode == 0, result.stderr
    verdict = json.loads(result.stdout)
    assert (
        verdict["valid"] is True and verdict["kid"] == station["kid"] and verdict["alg"] == "ESP256"
    )
    assert verdict["body"]["station"] == "bench-03"


def test_verify_rejects_a_tampered_event(station: dict, tmp_path: Path) -> None:
    message = bytearray((station["base"] / "event.cose").read_bytes())
    message[200] ^= 0x01
    (tmp_path / "bad.cose").write_bytes(bytes(message))
    result = run("verify", str(tmp_path / "bad.cose"), "--trust", str(station["trust"]))
    assert result.returncode == 1
    assert result.stdout.startswith(b"invalid: bad_signature")
    as_json = run("verify", str(tmp_path / "bad.cose"), "--trust", str(station["trust"]), "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["reason"] == "bad_signature"


def test_verify_revoked_and_usage_errors(station: dict, tmp_path: Path) -> None:
    store = tmp_path / "revoked.json"
    store.write_bytes(station["trust"].read_bytes())
    revoked = run("keys", "trust", "--store", str(store), "--revoke", station["kid"])
    assert revoked.returncode == 0, revoked.stderr
    listed = run("keys", "trust", "--store", str(store))
    assert f"{station['kid']} REVOKED recy-suzhou-01/bench-03".encode() in listed.stdout
    result = run("verify", str(station["base"] / "event.cose"), "--trust", str(store), "--json")
    assert (result.returncode, json.loads(result.stdout)["reason"]) == (1, "revoked")
    missing = run(
        "verify", str(station["base"] / "event.cose"), "--trust", str(tmp_path / "none.json")
    )
    assert missing.returncode == 2 and b"cannot read trust file" in missing.stderr
    # one line, naming the file (issue 13: no silent start with an empty store)
    assert missing.stderr.decode().splitlines() == [
        f"error: cannot read trust file {tmp_path / 'none.json'}: No such file or directory"
    ]
    garbage = run("verify", "-", "--trust", str(station["trust"]), stdin=b"hello")
    assert garbage.returncode == 1 and garbage.stdout.startswith(b"invalid: not_cbor")


def test_verify_topic_bound_event(station: dict, tmp_path: Path) -> None:
    topic = "battrace/v1/recy-suzhou-01/bench-03/event"
    event = example_event(station["kid"])
    message = sign_event(event, load_signer(station["keys"]), external_aad=topic.encode())
    (tmp_path / "bound.cose").write_bytes(message)
    ok = run(
        "verify", str(tmp_path / "bound.cose"), "--trust", str(station["trust"]), "--topic", topic
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    wrong = run("verify", str(tmp_path / "bound.cose"), "--trust", str(station["trust"]))
    assert wrong.returncode == 1 and wrong.stdout.startswith(b"invalid: bad_signature")
