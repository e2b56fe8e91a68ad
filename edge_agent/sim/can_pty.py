"""A serial "null modem" made of two pty pairs, for slcan between processes.

Each end opens one pty path with python-can's ``slcan`` interface; a relay thread copies
frame lines between the two masters. The relay remembers the bitrate each end configured
(slcan ``S<n>`` command) and, like a real bus, passes nothing between ends whose bitrates
differ, which makes "wrong bitrate" testable without hardware.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import tty

log = logging.getLogger(__name__)

FRAME_STARTS = frozenset(b"tTrRdDbB")


class PtyNullModem:
    """Two pty paths (``a_path``, ``b_path``) joined by a relay thread; start()/stop()."""

    def __init__(self) -> None:
        self._a_master, self._a_slave = os.openpty()
        self._b_master, self._b_slave = os.openpty()
        for fd in (self._a_slave, self._b_slave):
            tty.setraw(fd)
        for fd in (self._a_master, self._b_master):
            os.set_blocking(fd, False)  # a reader that went away must not stall the relay
        self.a_path = os.ttyname(self._a_slave)
        self.b_path = os.ttyname(self._b_slave)
        self._wake_r, self._wake_w = os.pipe()
        self._thread: threading.Thread | None = None
        self.bitrate_code: dict[int, str] = {}
        self.dropped_for_bitrate = 0
        self.relayed = 0

    def start(self) -> PtyNullModem:
        """Start relaying."""
        self._thread = threading.Thread(
            target=self._run, name="edge-agent-pty-null-modem", daemon=False
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop relaying and close every descriptor."""
        if self._thread is not None:
            os.write(self._wake_w, b"x")
            self._thread.join(timeout=5.0)
            self._thread = None
        for fd in (
            self._a_master,
            self._a_slave,
            self._b_master,
            self._b_slave,
            self._wake_r,
            self._wake_w,
        ):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> PtyNullModem:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        buffers = {self._a_master: bytearray(), self._b_master: bytearray()}
        peer = {self._a_master: self._b_master, self._b_master: self._a_master}
        while True:
            ready, _, _ = select.select([self._a_master, self._b_master, self._wake_r], [], [])
            if self._wake_r in ready:
                return
            for fd in ready:
                try:
                    chunk = os.read(fd, 4096)
                except (BlockingIOError, OSError):
                    continue  # nothing after all, or the other side closed its end
                buf = buffers[fd]
                buf.extend(chunk)
                while (end := buf.find(b"\r")) >= 0:
                    line = bytes(buf[:end])
                    del buf[: end + 1]
                    self._line(fd, peer[fd], line)

    def _line(self, src: int, dst: int, line: bytes) -> None:
        if not line:
            return
        if line[0] == ord("S") and len(line) == 2:
            self.bitrate_code[src] = line[1:].decode("ascii", "replace")
            return
        if line[0] not in FRAME_STARTS:
            return
        mine, theirs = self.bitrate_code.get(src), self.bitrate_code.get(dst)
        if mine is not None and theirs is not None and mine != theirs:
            self.dropped_for_bitrate += 1  # no common bit timing: nobody hears the frame
            return
        self.relayed += 1
        try:
            os.write(dst, line + b"\r")
        except OSError as exc:
            log.debug("pty relay write failed: %s", exc)
