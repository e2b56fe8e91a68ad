"""Hostile command lines and files for the commands that read outside input (issue 15):
they answer, or refuse with exit 1/2 and one stderr line, never a traceback or a hang."""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.cli import main
from edge_agent.config import check_site, load_config
from edge_agent.errors import ConfigError

# surrogates stand for undecodable bytes in argv (os.fsdecode), as in `--topic $'a\xff'`
ARG_TEXT = st.text(
    alphabet=st.characters(codec=None, exclude_categories=("Cc",)) | st.sampled_from("\udcff\x00"),
    max_size=40,
)
FILE_BYTES = st.one_of(
    st.binary(max_size=300),
    st.sampled_from([b"[" * 5000, b"\x89PNG\r\n\x1a\n", b"-----BEGIN PUBLIC KEY-----\n", b"{}"]),
)


def _run(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 2
    return code, err.getvalue()


def _commands(path: str, text: str) -> list[list[str]]:
    return [
        ["code", "parse", text],
        ["code", "parse", "--any", text],
        ["verify", path, "--trust", path],
        ["verify", path, "--trust", path, "--topic", text],
        ["verify", path, "--trust", path, "--at", text],
        ["label", "read", path],
        ["label", "read", path, "--timeout", text],
        ["outbox", "--path", path, "status"],
        ["outbox", "--path", path, "list", "--limit", text],
        ["keys", "show", "--dir", path],
        ["keys", "trust", "--store", path],
        ["--config", path, "config", "check"],
        ["--config", path, "config", "show"],
    ]


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(text=ARG_TEXT, content=FILE_BYTES, which=st.integers(0, 12))
def test_fuzz_cli(text: str, content: bytes, which: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input"
        path.write_bytes(content)
        argv = _commands(str(path), text)[which]
        try:
            code, err = _run(argv)
        except ValueError as exc:  # NUL in a path is refused by the OS layer before us
            assert "null" in str(exc).lower()
            return
        assert code in (0, 1, 2), (argv, code, err)
        assert "Traceback" not in err, (argv, err)
        if code == 2 and argv[0] != "code" and "usage:" not in err:
            assert len(err.strip().splitlines()) == 1, (argv, err)


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)))
def test_fuzz_config_file(content: bytes) -> None:
    """A config file is accepted or refused with ConfigError; check_site never raises."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.toml"
        path.write_bytes(content)
        try:
            config = load_config(path, environ={})
        except ConfigError:
            return
        check_site(config, gateway=True)


@pytest.mark.parametrize(
    "argv",
    [
        ["verify", "--trust", "/dev/zero"],
        ["verify", "--trust", "/dev/null", "--topic", "a\udcff"],
        ["code", "parse", "(999)abc"],
        ["label", "read", "/nonexistent/label.png"],
        ["label", "read", "x.png", "--timeout", "nan"],
        ["outbox", "--path", "/nonexistent/typo/outbox.sqlite3", "status"],
        ["keys", "init", "--dir", "/dev/null", "--force"],
    ],
)
def test_issue_examples_exit_2(argv: list[str]) -> None:
    code, err = _run(argv)
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("usage:", " "))]
    assert len(lines) == 1 and "Traceback" not in err, err
