"""SAE J1939-21 transport protocol (TP.CM/TP.DT) as pure state machines.

No bus I/O: frames come in through ``on_frame`` and go out through a ``send(can_id, data)``
callable; time comes from a ``clock()`` callable and timers are checked by ``poll()``. That
keeps the protocol testable with a fake clock and fuzzable with arbitrary frame sequences.
Timers follow GB/T 27930 cl. 6.5 / J1939-21: Tr 200 ms, Th 500 ms, T1 750 ms, T2 1250 ms,
T3 1250 ms, T4 1050 ms.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

PGN_TP_CM = 0x00EC00
PGN_TP_DT = 0x00EB00
RTS, CTS, EOMA, BAM, ABORT = 16, 17, 19, 32, 255
GLOBAL = 0xFF
MAX_SIZE = 1785  # 255 packets x 7 bytes
TR, TH, T1, T2, T3, T4 = 0.200, 0.500, 0.750, 1.250, 1.250, 1.050

# J1939-21 connection abort reasons
ABORT_BUSY = 1
ABORT_RESOURCES = 2
ABORT_TIMEOUT = 3
ABORT_CTS_DURING_DATA = 4
ABORT_RETRANSMIT_LIMIT = 5
ABORT_UNEXPECTED_DT = 6
ABORT_BAD_SEQUENCE = 7
ABORT_DUPLICATE_SEQUENCE = 8
ABORT_TOO_LARGE = 9

Send = Callable[[int, bytes], None]
Clock = Callable[[], float]


def make_id(priority: int, pgn: int, dest: int, source: int) -> int:
    """29-bit J1939 identifier; PDU1 PGNs (PF < 240) carry the destination in PS."""
    pf = (pgn >> 8) & 0xFF
    if pf < 240:
        pgn = (pgn & 0x3FF00) | (dest & 0xFF)
    return ((priority & 7) << 26) | ((pgn & 0x3FFFF) << 8) | (source & 0xFF)


def split_id(can_id: int) -> tuple[int, int, int, int]:
    """(priority, pgn, dest, source) of a 29-bit identifier; dest is 0xFF for PDU2."""
    priority = (can_id >> 26) & 7
    pf = (can_id >> 16) & 0xFF
    ps = (can_id >> 8) & 0xFF
    source = can_id & 0xFF
    if pf < 240:
        return priority, (can_id >> 8) & 0x3FF00, ps, source
    return priority, (can_id >> 8) & 0x3FFFF, GLOBAL, source


def pgn_bytes(pgn: int) -> bytes:
    return bytes((pgn & 0xFF, (pgn >> 8) & 0xFF, (pgn >> 16) & 0xFF))


def pgn_of(data: bytes) -> int:
    return data[5] | (data[6] << 8) | (data[7] << 16)


def packets_for(size: int) -> int:
    """Number of TP.DT packets needed for ``size`` bytes."""
    return (size + 6) // 7


@dataclass(frozen=True)
class TpCompleted:
    """A reassembled multi-packet message."""

    pgn: int
    source: int
    dest: int
    data: bytes
    duplicates: int = 0
    retransmits: int = 0


@dataclass(frozen=True)
class TpAborted:
    """A transfer that ended without its message; ``by`` is "peer", "us" or "timeout"."""

    pgn: int
    source: int
    dest: int
    reason: int
    by: str
    detail: str


TpEvent = TpCompleted | TpAborted


@dataclass
class _RxSession:
    source: int
    dest: int
    pgn: int
    size: int
    count: int
    bam: bool
    window: int
    window_start: int = 1
    window_end: int = 0
    packets: dict[int, bytes] = field(default_factory=dict)
    deadline: float = 0.0
    duplicates: int = 0
    retransmits: int = 0


class TpReceiver:
    """Reassembles RTS/CTS and BAM transfers addressed to ``address`` (or any, when passive).

    ``send`` may be None for a passive listener (replay, sniffing): it then sends no CTS,
    EndOfMsgAck or Abort and follows the transfers other nodes negotiate.
    """

    def __init__(
        self,
        *,
        address: int,
        send: Send | None,
        clock: Clock,
        max_packets_per_cts: int = 255,
        max_retransmits: int = 2,
        priority: int = 7,
    ) -> None:
        self.address = address
        self._send = send
        self._clock = clock
        self._window = max(1, min(255, max_packets_per_cts))
        self._max_retransmits = max_retransmits
        self._priority = priority
        self._sessions: dict[tuple[int, bool], _RxSession] = {}
        self.ignored_frames = 0

    @property
    def passive(self) -> bool:
        """True for a listener that never transmits."""
        return self._send is None

    @property
    def active(self) -> bool:
        """True while a transfer is in progress."""
        return bool(self._sessions)

    def next_deadline(self) -> float | None:
        """Earliest timer expiry, for the I/O loop's wait."""
        return min((s.deadline for s in self._sessions.values()), default=None)

    def on_frame(self, can_id: int, data: bytes) -> list[TpEvent]:
        """Feed one received frame; returns completed or aborted transfers."""
        _, pgn, dest, source = split_id(can_id)
        if pgn not in (PGN_TP_CM, PGN_TP_DT) or len(data) < 1:
            return []
        if self._send is not None and dest not in (self.address, GLOBAL):
            return []
        if pgn == PGN_TP_CM:
            return self._on_cm(source, dest, data)
        return self._on_dt(source, dest, data)

    def poll(self) -> list[TpEvent]:
        """Expire timers; a timed-out RTS/CTS transfer is aborted towards the sender."""
        now = self._clock()
        events: list[TpEvent] = []
        for key, s in list(self._sessions.items()):
            if now >= s.deadline:
                del self._sessions[key]
                if not s.bam:
                    self._tx_abort(s.source, s.pgn, ABORT_TIMEOUT)
                missing = [n for n in range(1, s.count + 1) if n not in s.packets]
                events.append(
                    TpAborted(
                        s.pgn,
                        s.source,
                        s.dest,
                        ABORT_TIMEOUT,
                        "timeout",
                        f"timed out waiting for packet(s) {missing[:8]} of {s.count}",
                    )
                )
        return events

    # --- connection management ---------------------------------------------------------

    def _on_cm(self, source: int, dest: int, data: bytes) -> list[TpEvent]:
        if len(data) < 8:
            self.ignored_frames += 1
            return []
        control = data[0]
        pgn = pgn_of(data)
        if control in (RTS, BAM):
            return self._on_announce(source, dest, data, bam=control == BAM)
        if control == ABORT:
            s = self._sessions.pop((source, False), None)
            if s is None and self._send is None:
                s = self._sessions.pop((dest, False), None)  # sniffed: the receiver gave up
            if s is None:
                return []
            return [
                TpAborted(s.pgn, s.source, s.dest, data[1], "peer", "transfer aborted by the peer")
            ]
        if self._send is None and control in (CTS, EOMA):
            return []  # passive: the other side of a sniffed transfer
        self.ignored_frames += 1
        log.debug("tp: ignoring control byte %d for pgn %#x", control, pgn)
        return []

    def _on_announce(self, source: int, dest: int, data: bytes, *, bam: bool) -> list[TpEvent]:
        size = data[1] | (data[2] << 8)
        count = data[3]
        pgn = pgn_of(data)
        events: list[TpEvent] = []
        old = self._sessions.pop((source, bam), None)
        if old is not None:
            events.append(
                TpAborted(
                    old.pgn,
                    source,
                    old.dest,
                    ABORT_BUSY,
                    "peer",
                    "superseded by a new announcement",
                )
            )
        if size < 9 or size > MAX_SIZE or count != packets_for(size):
            if not bam:
                self._tx_abort(source, pgn, ABORT_TOO_LARGE if size > MAX_SIZE else ABORT_RESOURCES)
            events.append(
                TpAborted(
                    pgn,
                    source,
                    dest,
                    ABORT_RESOURCES,
                    "us",
                    f"bad announcement: {size} bytes in {count} packets",
                )
            )
            return events
        window = count if bam else min(self._window, data[4] or 255, count)
        s = _RxSession(source, dest, pgn, size, count, bam, window)
        self._sessions[(source, bam)] = s
        if bam:
            s.window_end = count
            s.deadline = self._clock() + T1
        else:
            self._request(s, 1)
        return events

    def _request(self, s: _RxSession, first: int) -> None:
        """Send CTS for the next window starting at ``first`` and wait T2 for its data."""
        n = min(s.window, s.count - first + 1)
        s.window_start, s.window_end = first, first + n - 1
        s.deadline = self._clock() + T2
        if self._send is not None:
            payload = bytes((CTS, n, first, 0xFF, 0xFF)) + pgn_bytes(s.pgn)
            self._send(make_id(self._priority, PGN_TP_CM, s.source, self.address), payload)
        else:
            s.window_start, s.window_end = first, s.count

    # --- data transfer -----------------------------------------------------------------

    def _on_dt(self, source: int, dest: int, data: bytes) -> list[TpEvent]:
        bam = dest == GLOBAL
        s = self._sessions.get((source, bam))
        if s is None:
            self.ignored_frames += 1
            return []
        if len(data) < 2:
            self.ignored_frames += 1
            return []
        seq = data[0]
        if seq < 1 or seq > s.count:
            self.ignored_frames += 1
            return []
        chunk = bytes(data[1:8])
        if seq in s.packets:
            s.duplicates += 1  # a repeat or a retransmission: keep the newest copy
        s.packets[seq] = chunk
        s.deadline = self._clock() + T1
        if len(s.packets) == s.count:
            return [self._finish(s)]
        if not s.bam and seq == s.window_end:
            missing = [n for n in range(s.window_start, s.window_end + 1) if n not in s.packets]
            if missing:
                if s.retransmits >= self._max_retransmits:
                    del self._sessions[(source, bam)]
                    self._tx_abort(source, s.pgn, ABORT_RETRANSMIT_LIMIT)
                    return [
                        TpAborted(
                            s.pgn,
                            source,
                            s.dest,
                            ABORT_RETRANSMIT_LIMIT,
                            "us",
                            f"packets {missing[:8]} still missing after retransmits",
                        )
                    ]
                s.retransmits += 1
                self._request(s, missing[0])
            else:
                self._request(s, s.window_end + 1)
        return []

    def _finish(self, s: _RxSession) -> TpCompleted:
        del self._sessions[(s.source, s.bam)]
        payload = b"".join(s.packets[n] for n in range(1, s.count + 1))[: s.size]
        if not s.bam and self._send is not None:
            ack = bytes((EOMA, s.size & 0xFF, s.size >> 8, s.count, 0xFF)) + pgn_bytes(s.pgn)
            self._send(make_id(self._priority, PGN_TP_CM, s.source, self.address), ack)
        return TpCompleted(s.pgn, s.source, s.dest, payload, s.duplicates, s.retransmits)

    def _tx_abort(self, dest: int, pgn: int, reason: int) -> None:
        if self._send is not None:
            payload = bytes((ABORT, reason, 0xFF, 0xFF, 0xFF)) + pgn_bytes(pgn)
            self._send(make_id(self._priority, PGN_TP_CM, dest, self.address), payload)
