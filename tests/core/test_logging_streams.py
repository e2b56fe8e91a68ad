"""Logging set up under one stderr keeps working after that stream is closed (issue 15:
"--- Logging error --- ValueError: I/O operation on closed file" a dozen times per test run)."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator

import pytest

from edge_agent.logs import StderrHandler, setup_logging


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_root")
def test_handler_follows_the_current_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    captured = io.StringIO()
    with contextlib.redirect_stderr(captured):
        setup_logging(level="info")
        logging.getLogger("edge_agent.test").warning("while redirected")
    captured.close()  # like a test's capture stream after the test
    logging.getLogger("edge_agent.test").warning("after the stream closed")
    err = capsys.readouterr().err
    assert "Logging error" not in err and "I/O operation on closed file" not in err
    assert "after the stream closed" in err


@pytest.mark.usefixtures("restore_root")
def test_setup_twice_keeps_one_console_handler() -> None:
    root = logging.getLogger()
    capture = logging.Handler()  # e.g. a test's capture or a file handler: kept
    root.addHandler(capture)
    setup_logging()
    setup_logging(fmt="json")
    assert sum(isinstance(h, StderrHandler) for h in root.handlers) == 1
    assert capture in root.handlers
