"""Host-side line parser: exact framing, typed rejections, and hypothesis fuzzing."""

from __future__ import annotations

import json
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.errors import NodeProtocolError
from edge_agent.nodes.messages import Ack, WeightMessage
from edge_agent.nodes.protocol import encode_command, frame, parse_line

ENV = {"v": 1, "node": "e66141040327582a", "boot": "0a1b2c3d", "seq": 5, "ts": 123}


def line(obj: dict[str, object]) -> bytes:
    return frame(json.dumps(obj).encode())


def test_weight_line_parses_into_typed_body() -> None:
    msg = parse_line(
        line(
            {
                **ENV,
                "t": "w",
                "raw": 5,
                "gross_g": 1200,
                "net_g": 1150,
                "e_g": 50,
                "max_g": 600000,
                "stable": True,
                "future_field": 1,
            }
        )
    )
    assert msg is not None and msg.type == "w" and msg.node_id == "e66141040327582a"
    assert isinstance(msg.body, WeightMessage)
    assert (msg.body.net_g, msg.body.stable, msg.body.indicative) == (1150, True, True)


def test_command_encoding_is_crc_framed() -> None:
    out = encode_command(7, "tare", {"timeout_ms": 100})
    payload = out[1:-10]
    assert out.startswith(b"@") and out.endswith(b"\n")
    assert out[-9:-1] == b"%08x" % zlib.crc32(payload)
    assert json.loads(payload) == {
        "v": 1,
        "t": "cmd",
        "id": 7,
        "op": "tare",
        "args": {"timeout_ms": 100},
    }


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (line({**ENV, "t": "w"})[:-4] + b"aaa\n", "CRC mismatch"),
        (b"@" + b'{"v":1}' + b"\n", "no CRC"),
        (frame(b"not json"), "bad JSON"),
        (frame(b"[1, 2]"), "not a JSON object"),
        (line({**ENV, "v": 2, "t": "hello"}), "protocol version 2"),
        (line({**ENV, "v": True, "t": "hello"}), "protocol version"),
        (line({**ENV, "t": "zz"}), "unknown message type"),
        (line({**ENV, "t": "ack", "id": "x", "op": "tare", "ok": True}), "id"),
        (line({**ENV, "node": "NOT-HEX", "t": "hb", "up_ms": 1}), "node"),
        (b"@" + b"x" * 2000 + b"*00000000\n", "too long"),
    ],
)
def test_bad_lines_raise_typed_errors(raw: bytes, reason: str) -> None:
    with pytest.raises(NodeProtocolError, match=reason):
        parse_line(raw)


def test_unmarked_lines_are_not_errors() -> None:
    assert parse_line(b"MicroPython v1.24 on 2024-10-01; Raspberry Pi Pico\n") is None
    assert parse_line(b"\n") is None


def test_ack_roundtrip() -> None:
    msg = parse_line(
        line(
            {
                **ENV,
                "t": "ack",
                "id": 3,
                "op": "calibrate",
                "ok": True,
                "cfg": "1f090a68",
                "result": {"cpk": 2000.0},
            }
        )
    )
    assert msg is not None and isinstance(msg.body, Ack) and msg.body.result == {"cpk": 2000.0}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_fuzz_arbitrary_bytes_never_crash(data: bytes) -> None:
    for raw in (data, b"@" + data, frame(data)):
        try:
            parse_line(raw)
        except NodeProtocolError:
            pass


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(["hello", "hb", "w", "s", "dock", "ack", "nak", "x"]),
    st.dictionaries(
        st.sampled_from(
            [
                "raw",
                "net_g",
                "gross_g",
                "e_g",
                "max_g",
                "stable",
                "temps",
                "gas",
                "id",
                "op",
                "ok",
                "err",
                "up_ms",
                "docked",
                "minor",
                "status",
                "seq",
            ]
        ),
        json_values,
        max_size=8,
    ),
)
def test_fuzz_well_framed_objects_validate_or_reject(kind: str, fields: dict[str, object]) -> None:
    try:
        msg = parse_line(line({**ENV, **fields, "t": kind}))
    except NodeProtocolError:
        return
    assert msg is not None and msg.type == kind
