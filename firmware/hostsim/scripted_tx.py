"""In-memory transport for firmware tests: queued host lines in, framed node lines out."""

import json
import time

import nodeproto


class ScriptedTx:
    def __init__(self, keep=True):
        self.reader = nodeproto.LineReader()
        self.inbox = []  # (due_ms, bytes)
        self.sent = []
        self.keep = keep  # False: only count message types (small-heap runs)
        self.types = {}
        self.eof = False
        self.hello_due = False

    def cmd(self, cid, op, args=None, v=1, after_ms=0):
        body = {"v": v, "t": "cmd", "id": cid, "op": op, "args": args or {}}
        self.raw(nodeproto.frame(json.dumps(body).encode()), after_ms)

    def raw(self, line, after_ms=0):
        self.inbox.append((time.ticks_add(time.ticks_ms(), after_ms), line))

    def write(self, data):
        if self.keep:
            self.sent.append(data)
            return
        t = json.loads(nodeproto.unframe(data))["t"]
        self.types[t] = self.types.get(t, 0) + 1

    def poll_line(self, timeout_ms):
        if self.inbox and time.ticks_diff(time.ticks_ms(), self.inbox[0][0]) >= 0:
            line = self.inbox.pop(0)[1].rstrip(b"\n")
            self.reader.buf[: len(line)] = line
            return len(line)
        time.sleep_ms(timeout_ms)
        return -1

    def messages(self, t=None):
        out = []
        for line in self.sent:
            m = json.loads(nodeproto.unframe(line))
            if t is None or m["t"] == t:
                out.append(m)
        return out
