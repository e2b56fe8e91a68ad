"""Serial transport over the USB-CDC/UART REPL stream (stdin/stdout), byte-wise and non-blocking."""

import select
import sys

import micropython
from nodeproto import LineReader


class SerialTransport:
    """Framed lines over stdio; Ctrl-C is disabled so the stream is pure data."""

    def __init__(self):
        micropython.kbd_intr(-1)
        self.inp = sys.stdin.buffer
        self.out = sys.stdout.buffer
        self.poller = select.poll()
        self.poller.register(sys.stdin, select.POLLIN)
        self.one = bytearray(1)
        self.reader = LineReader()
        self.eof = False
        self.hello_due = False

    def write(self, data):
        """Send one framed line."""
        self.out.write(data)

    def poll_line(self, timeout_ms):
        """Wait up to ``timeout_ms`` for input; return a complete line's length in
        ``reader.buf`` or -1. Reads one byte at a time: device stdin reads block until full."""
        t = timeout_ms
        for _ in range(600):  # bounded so the sampling loop keeps running under a flood
            ready = False
            for _ev in self.poller.ipoll(t):
                ready = True
            if not ready:
                return -1
            t = 0
            # the stubs type stdin.buffer as BinaryIO; MicroPython's stream has readinto
            if not self.inp.readinto(self.one):  # pyright: ignore[reportAttributeAccessIssue]
                self.eof = True  # host side closed (unix port only; USB-CDC never ends)
                return -1
            n = self.reader.feed(self.one[0])
            if n >= 0:
                return n
        return -1
