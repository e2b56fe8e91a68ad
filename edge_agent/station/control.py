"""Local control socket of a running station: ``edge-agent identify`` asks the service.

One JSON object per line over a unix socket in the data directory (owner-only permissions):
request ``{"op": "identify", "observations": [...], "wait_s": 5}`` (optional: ``technician``,
``consignor_name``, ``consignor_uscc``; the USCC's check character is verified), answer
``{"ok": true, "event_id": ..., "published": bool, "event": {...}}`` or
``{"ok": false, "error": "..."}``.

``{"op": "scale", "command": "tare" | "calibrate", "args": {...}}`` runs a scale command over
the service's own node link (``edge-agent node tare|calibrate`` and the kiosk page use it, so
they never fight ``run`` for the node's port); answer ``{"ok": true, "ack": {...}}``.

``{"op": "rotate", "alg": "ed25519" | "p256" | null, "overlap_s": int | null}`` starts a key
rotation in the service that signs (``edge-agent keys rotate``); answer ``{"ok": true,
"rotation_id": ..., "old_kid": ..., "new_kid": ..., "switched": bool}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from edge_agent.errors import CodeError, ControlSocketAccessError, EdgeAgentError, StationError

log = logging.getLogger(__name__)
SOCKET_NAME = "agent.sock"
MAX_REQUEST = 64 * 1024

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def socket_path(data_dir: Path) -> Path:
    """Where the running service listens."""
    return data_dir / SOCKET_NAME


SCALE_COMMANDS = ("tare", "calibrate")


async def serve_control(
    path: Path, handler: Handler, *, scale: Handler | None = None, rotate: Handler | None = None
) -> asyncio.AbstractServer:
    """Listen on ``path``; every request line is validated and answered with one line."""
    if path.exists():
        path.unlink()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                line = await reader.readline()
            except ValueError:  # LimitOverrunError: no newline within MAX_REQUEST bytes
                log.warning("control socket: request line over %d bytes refused", MAX_REQUEST)
                answer: dict[str, Any] = {
                    "ok": False,
                    "error": f"request line longer than {MAX_REQUEST} bytes",
                }
            else:
                answer = await _answer(line, handler, scale, rotate)
            writer.write(json.dumps(answer, ensure_ascii=False).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    old = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(on_client, path=str(path), limit=MAX_REQUEST)
    finally:
        os.umask(old)
    return server


async def _answer(
    line: bytes, handler: Handler, scale: Handler | None = None, rotate: Handler | None = None
) -> dict[str, Any]:
    try:
        request = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        log.warning("control socket: request is not JSON")
        return {"ok": False, "error": "request is not a JSON object"}
    if isinstance(request, dict) and request.get("op") == "scale" and scale is not None:
        return await _answer_scale(request, scale)
    if isinstance(request, dict) and request.get("op") == "rotate" and rotate is not None:
        return await _answer_rotate(request, rotate)
    if not isinstance(request, dict) or request.get("op") != "identify":
        return {
            "ok": False,
            "error": "unknown request (expected op=identify, op=scale or op=rotate)",
        }
    observations = request.get("observations", [])
    if not isinstance(observations, list) or not all(isinstance(o, str) for o in observations):
        return {"ok": False, "error": "observations must be a list of text"}
    wait = request.get("wait_s", 5.0)
    if isinstance(wait, bool) or not isinstance(wait, int | float) or not 0 <= wait <= 600:
        return {"ok": False, "error": "wait_s must be a number 0..600"}
    intake, problem = _intake_fields(request)
    if problem:
        return {"ok": False, "error": problem}
    try:
        return await handler({"observations": observations, "wait_s": float(wait), **intake})
    except EdgeAgentError as exc:
        return {"ok": False, "error": str(exc)}


async def _answer_scale(request: dict[str, Any], scale: Handler) -> dict[str, Any]:
    command, args = request.get("command"), request.get("args", {})
    if command not in SCALE_COMMANDS:
        return {"ok": False, "error": f"scale command must be one of {', '.join(SCALE_COMMANDS)}"}
    if not isinstance(args, dict) or not all(
        isinstance(v, str | bool | int | float) for v in args.values()
    ):
        return {"ok": False, "error": "scale args must be an object of plain values"}
    try:
        return await scale({"command": command, "args": args})
    except EdgeAgentError as exc:
        return {"ok": False, "error": str(exc)}


async def _answer_rotate(request: dict[str, Any], rotate: Handler) -> dict[str, Any]:
    alg, overlap = request.get("alg"), request.get("overlap_s")
    if alg not in (None, "ed25519", "p256"):
        return {"ok": False, "error": "alg must be ed25519 or p256"}
    if overlap is not None and (type(overlap) is not int or not 0 <= overlap <= 366 * 86400):
        return {"ok": False, "error": "overlap_s must be an integer 0..31622400"}
    try:
        return await rotate({"alg": alg, "overlap_s": overlap})
    except EdgeAgentError as exc:
        return {"ok": False, "error": str(exc)}


async def request_rotate(path: Path, alg: str | None, overlap_s: int | None) -> dict[str, Any]:
    """Ask a running service to rotate its key; StationError when nobody listens."""
    try:
        reader, writer = await asyncio.open_unix_connection(str(path), limit=1024 * 1024)
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise StationError(f"no running station at {path}: {exc}") from None
    except PermissionError:
        raise ControlSocketAccessError(
            f"a station service runs at {path} but this user may not use its control socket; "
            "run keys rotate as the service user"
        ) from None
    try:
        request = {"op": "rotate", "alg": alg, "overlap_s": overlap_s}
        writer.write(json.dumps(request).encode() + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 60)
    finally:
        writer.close()
    try:
        answer: dict[str, Any] = json.loads(line)
    except ValueError:
        raise StationError("the running station sent an unreadable answer") from None
    return answer


async def request_scale(
    path: Path, command: str, args: dict[str, Any], timeout: float
) -> dict[str, Any]:
    """Ask a running service to run a scale command; StationError when nobody listens."""
    try:
        reader, writer = await asyncio.open_unix_connection(str(path), limit=1024 * 1024)
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise StationError(f"no running station at {path}: {exc}") from None
    try:
        request = {"op": "scale", "command": command, "args": args}
        writer.write(json.dumps(request).encode() + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout + 5)
    except TimeoutError:
        return {
            "ok": False,
            "error": f"the running station did not answer within {timeout + 5:g} s",
        }
    finally:
        writer.close()
    try:
        answer: dict[str, Any] = json.loads(line)
    except ValueError:
        # the service is there but failed: never fall back to opening the port beside it
        return {"ok": False, "error": "the running station sent an unreadable answer"}
    return answer


def _intake_fields(request: dict[str, Any]) -> tuple[dict[str, str], str]:
    """The optional intake fields of a request, validated; (fields, problem)."""
    out: dict[str, str] = {}
    for key, most in (("technician", 64), ("consignor_name", 200), ("consignor_uscc", 18)):
        value = request.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not 1 <= len(value.strip()) <= most:
            return {}, f"{key} must be text of 1..{most} characters"
        out[key] = value.strip()
    if "consignor_uscc" in out:
        from edge_agent.codes.uscc import parse_uscc

        try:
            out["consignor_uscc"] = parse_uscc(out["consignor_uscc"])
        except CodeError as exc:
            return {}, f"consignor_uscc: {exc}"
    return out, ""


async def request_identify(
    path: Path, observations: list[str], wait_s: float, **intake: str
) -> dict[str, Any]:
    """Ask a running service for one identification; StationError when nobody listens.

    ``intake``: ``technician``, ``consignor_name``, ``consignor_uscc`` (given ones only)."""
    try:
        reader, writer = await asyncio.open_unix_connection(str(path), limit=16 * 1024 * 1024)
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise StationError(f"no running station at {path}: {exc}") from None
    except PermissionError:
        # owner-only on purpose; identifying in this process would fight the service for the bus
        raise ControlSocketAccessError(
            f"a station service runs at {path} but this user may not use its control socket; "
            "run identify as the service user (sudo -u edge-agent edge-agent identify ...)"
        ) from None
    try:
        request = {"op": "identify", "observations": observations, "wait_s": wait_s, **intake}
        writer.write(json.dumps(request).encode() + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), wait_s + 120)
    finally:
        writer.close()
    try:
        answer: dict[str, Any] = json.loads(line)
    except ValueError:
        raise StationError("the running station sent an unreadable answer") from None
    return answer
