"""Firmware line protocol on the unix port, cross-checked against CPython's zlib."""

from __future__ import annotations

import json
import zlib

from firmware.tests.conftest import MpyRun


def test_frame_crc_matches_cpython(mpy: MpyRun) -> None:
    out = mpy(
        """
        import nodeproto
        print(nodeproto.frame(b'{"a": 1}').decode(), end="")
        """
    ).stdout
    payload = b'{"a": 1}'
    assert out == "@" + payload.decode() + "*" + f"{zlib.crc32(payload):08x}" + "\n"


def test_unframe_and_parse_rejections(mpy: MpyRun) -> None:
    out = mpy(
        """
        import nodeproto, json
        ok = nodeproto.frame(b'{"v":1,"t":"cmd","id":7,"op":"tare"}')
        print(nodeproto.parse_command(ok)["id"])
        for bad in (b'hello world', ok[:-5] + b'\\n', ok.replace(b'tare', b'tarx'),
                    nodeproto.frame(b'{"v":2,"t":"cmd","id":1,"op":"tare"}'),
                    nodeproto.frame(b'{"v":1,"t":"cmd","id":"x","op":"tare"}'),
                    nodeproto.frame(b'[1,2]')):
            try:
                nodeproto.parse_command(bad)
                print("accepted")
            except ValueError as e:
                print(e.args[0])
        """
    ).stdout.split()
    assert out == ["7", "unmarked", "nocrc", "crc", "version", "id", "notobject"]


def test_line_reader_drops_overlong_lines_and_resyncs(mpy: MpyRun) -> None:
    out = mpy(
        """
        import nodeproto
        r = nodeproto.LineReader(16)
        got = []
        for b in b'x' * 40 + b'\\nshort\\nabc\\n':
            n = r.feed(b)
            if n >= 0:
                got.append(bytes(r.buf[:n]).decode())
        print(",".join(got))
        """
    ).stdout.strip()
    assert out == "short,abc"


def test_store_falls_back_to_backup_on_corruption(mpy: MpyRun) -> None:
    out = mpy(
        """
        import store
        store.save("c.json", {"a": 1})
        store.save("c.json", {"a": 2})
        print(store.load("c.json", None)["a"])
        with open("c.json", "w") as f:
            f.write('{"crc": 1, "body": "{\\\\"a\\\\": 3}"}')
        print(store.load("c.json", None)["a"])
        with open("c.json.bak", "w") as f:
            f.write('garbage')
        print(store.load("c.json", "default"))
        """
    ).stdout.split()
    assert out == ["2", "1", "default"]
    assert json.loads('{"a": 1}')["a"] == 1
