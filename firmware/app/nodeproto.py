"""Node line protocol: one JSON object per line, '@' marker, CRC-32 (hex) over the exact payload."""

import binascii
import json

PROTO_MAJOR = 1
PROTO_MINOR = 0
MAX_LINE = 512  # bytes; longer input is dropped up to the next newline (resync)

_HEX = b"0123456789abcdef"


def crc_hex(payload):
    """CRC-32 of ``payload`` as 8 lowercase hex bytes."""
    c = binascii.crc32(payload) & 0xFFFFFFFF
    out = bytearray(8)
    for i in range(8):
        out[7 - i] = _HEX[c & 0xF]
        c >>= 4
    return bytes(out)


def frame(payload):
    """Frame JSON ``payload`` bytes as ``@<payload>*<crc>\\n``."""
    return b"@" + payload + b"*" + crc_hex(payload) + b"\n"


def unframe(line):
    """Return the JSON payload of a framed line, or raise ValueError naming the problem."""
    n = len(line)
    while n and line[n - 1] in (10, 13):
        n -= 1
    if n < 11 or line[0] != 64:  # '@'
        raise ValueError("unmarked")
    if line[n - 9] != 42:  # '*'
        raise ValueError("nocrc")
    payload = bytes(line[1 : n - 9])
    if crc_hex(payload) != bytes(line[n - 8 : n]):
        raise ValueError("crc")
    return payload


class LineReader:
    """Accumulates bytes into lines in a fixed buffer; overlong lines are dropped whole."""

    def __init__(self, size=MAX_LINE):
        self.buf = bytearray(size)
        self.n = 0
        self.dropping = False

    def feed(self, b):
        """Add one byte; return the line length when ``b`` ends a line, else -1."""
        if b == 10:
            n = self.n
            self.n = 0
            if self.dropping:
                self.dropping = False
                return -1
            return n
        if self.dropping:
            return -1
        if self.n >= len(self.buf):
            self.dropping = True
            self.n = 0
            return -1
        self.buf[self.n] = b
        self.n += 1
        return -1


def parse_command(line):
    """Decode a framed host command into a dict; ValueError on bad framing, JSON or fields."""
    obj = json.loads(unframe(line))
    if not isinstance(obj, dict):
        raise ValueError("notobject")
    if obj.get("v") != PROTO_MAJOR:
        raise ValueError("version")
    if obj.get("t") != "cmd":
        raise ValueError("type")
    cid = obj.get("id")
    if not isinstance(cid, int) or isinstance(cid, bool):
        raise ValueError("id")
    if not isinstance(obj.get("op"), str):
        raise ValueError("op")
    args = obj.get("args", {})
    if not isinstance(args, dict):
        raise ValueError("args")
    obj["args"] = args
    return obj
