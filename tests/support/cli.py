"""Run ``edge-agent`` in-process and check the one-clear-line contract for bad input."""

from __future__ import annotations

import pytest

from edge_agent.cli import main


def one_line_error(
    capsys: pytest.CaptureFixture[str], *argv: str, code: int = 2, contains: str = ""
) -> str:
    """Run ``edge-agent *argv``; assert exit ``code``, one stderr line, no traceback."""
    try:
        rc = main(list(argv))
    except SystemExit as exc:  # argparse refusals exit 2 with usage + one error line
        rc = int(exc.code or 0)
    err = capsys.readouterr().err
    assert rc == code, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("usage:")]
    lines = [line for line in lines if not line.startswith(" ")]  # usage continuation lines
    assert len(lines) == 1, err
    assert contains in lines[0], lines[0]
    return lines[0]
