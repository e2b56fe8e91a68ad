"""Control socket: an oversized request line, a user the socket refuses (issue 15)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.cli import main
from edge_agent.errors import ControlSocketAccessError
from edge_agent.station import control
from edge_agent.station.control import MAX_REQUEST, _answer, request_identify, serve_control


async def _ask(path: Path, line: bytes) -> dict[str, Any]:
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        writer.write(line)
        await writer.drain()
        answer: dict[str, Any] = json.loads(await asyncio.wait_for(reader.readline(), 10))
        return answer
    finally:
        writer.close()
        await writer.wait_closed()


def test_oversized_line_is_answered_and_serving_goes_on(tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []

    async def handler(request: dict[str, Any]) -> dict[str, Any]:
        calls.append(request)
        return {"ok": True, "event_id": "e-1"}

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        path = tmp_path / "agent.sock"
        server = await serve_control(path, handler)
        try:
            big = await _ask(path, b'{"op": "identify", "x": "' + b"a" * (MAX_REQUEST + 10))
            ok = await _ask(path, json.dumps({"op": "identify"}).encode() + b"\n")
            return big, ok
        finally:
            server.close()
            await server.wait_closed()

    big, ok = asyncio.run(scenario())
    assert big == {"ok": False, "error": f"request line longer than {MAX_REQUEST} bytes"}
    assert ok == {"ok": True, "event_id": "e-1"}
    assert len(calls) == 1


def _refuse(*_: object, **__: object) -> Any:
    raise PermissionError(13, "Permission denied")


def test_refused_socket_is_explained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # CI runs as root, which no file mode refuses: the refusal is simulated at the seam
    monkeypatch.setattr(control.asyncio, "open_unix_connection", _refuse)
    with pytest.raises(ControlSocketAccessError, match="may not use its control socket"):
        asyncio.run(request_identify(tmp_path / "agent.sock", [], 1.0))


def test_identify_refused_socket_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "agent.sock").write_text("")  # stands for the service's socket
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[station]\ndata_dir = "{data}"\n')
    monkeypatch.setattr(control.asyncio, "open_unix_connection", _refuse)
    assert main(["--config", str(cfg), "identify"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sudo -u edge-agent" in err[0], err


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=200),
        st.dictionaries(
            st.sampled_from(
                ["op", "observations", "wait_s", "technician", "consignor_name", "consignor_uscc"]
            ),
            st.none()
            | st.booleans()
            | st.floats(allow_nan=True)
            | st.integers()
            | st.text(max_size=30)
            | st.lists(st.text(max_size=5) | st.integers(), max_size=3),
        ).map(lambda d: json.dumps(d).encode()),
    )
)
def test_fuzz_control_lines(line: bytes) -> None:
    """Any request line gets one JSON answer; the handler sees only validated requests."""

    async def handler(request: dict[str, Any]) -> dict[str, Any]:
        assert isinstance(request["observations"], list)
        assert 0 <= request["wait_s"] <= 600
        return {"ok": True}

    answer = asyncio.run(_answer(line, handler))
    assert isinstance(answer, dict) and isinstance(answer["ok"], bool)
    if not answer["ok"]:
        assert isinstance(answer["error"], str) and answer["error"]
