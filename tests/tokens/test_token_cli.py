"""`keys init|show --pkcs11`, config validation, the self-test's key check, and one clear line
(exit 2) for every way a token key can be unusable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from edge_agent.config import config_from_plain
from edge_agent.errors import ConfigError
from edge_agent.selftest.checks.key import check_signing_key
from edge_agent.selftest.model import Verdict
from edge_agent.signing.keys import load_public_key
from edge_agent.signing.settings import SigningSettings
from edge_agent.signing.signer import key_id
from edge_agent.tokens.keys import find_key
from edge_agent.tokens.library import TokenSession
from tests.conftest import ROOT
from tests.support.station import write_config
from tests.support.tokens import Token, write_pin


def cli(token: Token, *args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**token.process_env(), "PYTHONPATH": str(ROOT)}
    env.pop("EDGE_AGENT_CONFIG", None)
    head = ["--config", str(config)] if config else []
    return subprocess.run(
        [sys.executable, "-m", "edge_agent", *head, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def flags(token: Token, key_label: str = "station", pin_file: Path | None = None) -> list[str]:
    return [
        "--pkcs11",
        "--module",
        str(token.module),
        "--token-label",
        token.label,
        "--key-label",
        key_label,
        "--pin-file",
        str(pin_file or token.pin_file),
    ]


def one_line(done: subprocess.CompletedProcess[str], contains: str) -> str:
    """Exit 2 with exactly one line on stderr, no traceback."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert contains in lines[0], lines[0]
    return lines[0]


def test_init_then_show_from_flags_and_from_config(token: Token, tmp_path: Path) -> None:
    pub = tmp_path / "station.pub.pem"
    init = cli(token, "keys", "init", *flags(token), "--pub-out", str(pub))
    assert init.returncode == 0, init.stderr
    kid = init.stdout.strip()
    assert kid == key_id(load_public_key(pub)).hex()
    shown = cli(token, "keys", "show", *flags(token), "--json")
    assert shown.returncode == 0, shown.stderr
    info = json.loads(shown.stdout)
    assert (info["kid"], info["alg"], info["alg_id"], info["location"]) == (
        kid,
        "ESP256",
        -9,
        "pkcs11",
    )
    assert (info["token"], info["key_label"], info["module"]) == (
        token.label,
        "station",
        str(token.module),
    )
    assert info["private_key"]["never_extractable"] is True
    assert info["public_key_pem"] == pub.read_text()
    # the config section alone is enough, and `keys show` says where the key lives
    config = write_config(tmp_path / "agent.toml", {"signing": {"pkcs11": token.plain()}})
    text = cli(token, "keys", "show", config=config)
    assert text.returncode == 0, text.stderr
    assert f"kid: {kid}" in text.stdout and "location: pkcs11" in text.stdout
    assert f"token: {token.label}" in text.stdout
    # a second init refuses to replace the key
    one_line(cli(token, "keys", "init", config=config), "--force")


def test_file_key_show_says_file(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = [sys.executable, "-m", "edge_agent", "keys"]
    subprocess.run([*run, "init", "--dir", str(keys)], env=env, check=True, capture_output=True)
    shown = subprocess.run(
        [*run, "show", "--dir", str(keys), "--json"], env=env, capture_output=True, check=True
    )
    assert json.loads(shown.stdout)["location"] == "file"


def test_wrong_pin_missing_token_missing_module_deleted_key(token: Token, tmp_path: Path) -> None:
    assert cli(token, "keys", "init", *flags(token)).returncode == 0
    wrong = write_pin(tmp_path / "wrong", "999999")
    one_line(cli(token, "keys", "show", *flags(token, pin_file=wrong)), "refused the PIN")
    missing_token = flags(token)
    missing_token[missing_token.index(token.label)] = "no-such-token"
    one_line(cli(token, "keys", "show", *missing_token), "no token labelled 'no-such-token'")
    missing_module = flags(token)
    missing_module[2] = str(tmp_path / "libnothing.so")
    one_line(cli(token, "keys", "show", *missing_module), "PKCS#11 module not found")
    not_a_module = tmp_path / "libfake.so"
    not_a_module.write_bytes(b"\x7fELF not really")
    missing_module[2] = str(not_a_module)
    one_line(cli(token, "keys", "show", *missing_module), "cannot load PKCS#11 module")
    with TokenSession(token.settings(), rw=True) as tk:
        find_key(tk).private.destroy()
    one_line(cli(token, "keys", "show", *flags(token)), "no private key labelled 'station'")


def test_pin_file_must_be_owner_only(softhsm: Token, tmp_path: Path) -> None:
    loose = write_pin(tmp_path / "loose")
    loose.chmod(0o644)
    one_line(cli(softhsm, "keys", "init", *flags(softhsm, pin_file=loose)), "chmod 600")
    with TokenSession(softhsm.settings()) as tk:  # nothing was created
        assert list(tk.session.get_objects()) == []


def test_pin_from_a_systemd_credential(softhsm: Token, tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir(mode=0o700)
    write_pin(creds / "token-pin", softhsm.pin_file.read_text().strip())
    config = write_config(
        tmp_path / "agent.toml",
        {
            "signing": {
                "pkcs11": {
                    "module": str(softhsm.module),
                    "token_label": softhsm.label,
                    "pin_credential": "token-pin",
                }
            }
        },
    )
    one_line(cli(softhsm, "keys", "init", config=config), "$CREDENTIALS_DIRECTORY is not")
    os.environ["CREDENTIALS_DIRECTORY"] = str(creds)
    try:
        done = cli(softhsm, "keys", "init", config=config)
    finally:
        del os.environ["CREDENTIALS_DIRECTORY"]
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip()) == 32


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ({"pin": "1234"}, "the PIN never goes in the config file"),
        ({}, "set exactly one of pin_file and pin_credential"),
        ({"pin_file": "/p", "pin_credential": "c"}, "set exactly one"),
        ({"pin_file": "relative/pin"}, "pin_file: must be an absolute path"),
        ({"pin_credential": "../x"}, "not a systemd credential name"),
        ({"pin_file": "/p", "module": "libsofthsm2.so"}, "module: must be an absolute path"),
        ({"pin_file": "/p", "token_label": ""}, "token_label"),
    ],
)
def test_config_is_validated_at_load(section: dict[str, str], problem: str) -> None:
    plain = {"module": "/usr/lib/softhsm/libsofthsm2.so", "token_label": "t", **section}
    with pytest.raises(ConfigError, match=r"signing\.pkcs11") as info:
        config_from_plain({"signing": {"pkcs11": plain}})
    assert problem in str(info.value)
    with pytest.raises(ConfigError, match=r"gateway\.receipt_pkcs11"):
        config_from_plain({"gateway": {"receipt_pkcs11": plain}})


def test_gateway_takes_a_key_dir_or_a_token_not_both() -> None:
    section = {"module": "/m.so", "token_label": "t", "pin_file": "/p"}
    with pytest.raises(ConfigError, match="not both"):
        config_from_plain({"gateway": {"receipt_key_dir": "/k", "receipt_pkcs11": section}})


def test_selftest_key_check_names_the_next_step(token: Token, tmp_path: Path) -> None:
    def check(**changes: object) -> tuple[Verdict, str, str]:
        signing = SigningSettings(key_dir=tmp_path, pkcs11=token.settings(**changes))
        outcome = check_signing_key(SimpleNamespace(config=SimpleNamespace(signing=signing)))  # type: ignore[arg-type]
        return outcome.verdict, outcome.detail, outcome.next_step

    verdict, _detail, step = check()
    assert verdict is Verdict.FAIL and "edge-agent keys init --pkcs11" in step
    with TokenSession(token.settings(), rw=True) as tk:
        from edge_agent.tokens.keys import create_key

        kid = key_id(create_key(tk).public_key).hex()
    verdict, detail, _ = check()
    assert verdict is Verdict.PASS and kid in detail and "test signature verifies" in detail
    verdict, detail, step = check(pin_file=write_pin(tmp_path / "bad", "111111"))
    assert verdict is Verdict.FAIL and "refused the PIN" in detail and "SO PIN" in step
    verdict, detail, step = check(token_label="gone")
    assert verdict is Verdict.FAIL and "no token labelled" in detail and "list-token-slots" in step
    verdict, detail, step = check(module=tmp_path / "none.so")
    assert verdict is Verdict.FAIL and "not found" in detail and "install" in step
    verdict, detail, step = check(pin_file=tmp_path / "no-pin")
    assert verdict is Verdict.FAIL and "not found" in detail and "install -m 600" in step
