"""SAE J1939-21 transport: the sending side (RTS/CTS or BAM), a pure state machine like the
receiver in ``j1939_tp`` (tx callable + clock, timers checked by ``poll``)."""

from __future__ import annotations

from edge_agent.bms.can.j1939_tp import (
    ABORT,
    ABORT_BAD_SEQUENCE,
    ABORT_RESOURCES,
    ABORT_TIMEOUT,
    BAM,
    CTS,
    EOMA,
    GLOBAL,
    MAX_SIZE,
    PGN_TP_CM,
    PGN_TP_DT,
    RTS,
    T3,
    T4,
    Clock,
    Send,
    TpAborted,
    TpCompleted,
    TpEvent,
    make_id,
    packets_for,
    pgn_bytes,
    pgn_of,
    split_id,
)


class TpSender:
    """Sends one message of 9..1785 bytes by RTS/CTS (or BAM when ``dest`` is global)."""

    def __init__(
        self,
        *,
        address: int,
        dest: int,
        pgn: int,
        data: bytes,
        send: Send,
        clock: Clock,
        priority: int = 7,
        max_packets_per_cts: int = 255,
        bam_interval: float = 0.05,
    ) -> None:
        if not 9 <= len(data) <= MAX_SIZE:
            raise ValueError(f"TP message must be 9..{MAX_SIZE} bytes, got {len(data)}")
        self.address, self.dest, self.pgn, self.data = address, dest, pgn, data
        self._send, self._clock, self._priority = send, clock, priority
        self.count = packets_for(len(data))
        self._window = max_packets_per_cts
        self._bam_interval = bam_interval
        self._next_bam = 1
        self.deadline: float | None = None
        self.result: TpEvent | None = None
        self.packets_sent = 0

    @property
    def done(self) -> bool:
        """True once the transfer completed or was aborted."""
        return self.result is not None

    def start(self) -> None:
        """Announce the transfer (RTS or BAM)."""
        control = BAM if self.dest == GLOBAL else RTS
        size = len(self.data)
        window = 0xFF if control == BAM else self._window
        payload = bytes((control, size & 0xFF, size >> 8, self.count, window)) + pgn_bytes(self.pgn)
        self._tx_cm(payload)
        self.deadline = self._clock() + (self._bam_interval if control == BAM else T3)

    def packet(self, seq: int) -> bytes:
        """TP.DT payload of packet ``seq`` (1-based), padded with 0xFF."""
        chunk = self.data[(seq - 1) * 7 : seq * 7]
        return bytes((seq,)) + chunk + b"\xff" * (7 - len(chunk))

    def send_packet(self, seq: int) -> None:
        """Transmit TP.DT packet ``seq``."""
        self.packets_sent += 1
        self._send(make_id(self._priority, PGN_TP_DT, self.dest, self.address), self.packet(seq))

    def abort(self, reason: int = ABORT_RESOURCES) -> None:
        """Abort the transfer towards the receiver."""
        if self.done:
            return
        self._tx_cm(bytes((ABORT, reason, 0xFF, 0xFF, 0xFF)) + pgn_bytes(self.pgn))
        self.result = TpAborted(
            self.pgn, self.address, self.dest, reason, "us", "aborted by sender"
        )

    def on_frame(self, can_id: int, data: bytes) -> None:
        """Handle CTS, EndOfMsgAck and Abort from the receiver."""
        _, pgn, dest, source = split_id(can_id)
        if self.done or pgn != PGN_TP_CM or dest != self.address or source != self.dest:
            return
        if len(data) < 8 or pgn_of(data) != self.pgn:
            return
        if data[0] == CTS:
            n, first = data[1], data[2]
            if n == 0:  # receiver holds the connection: wait up to T4 for the next CTS
                self.deadline = self._clock() + T4
                return
            if first < 1 or first > self.count:
                self.abort(ABORT_BAD_SEQUENCE)
                return
            for seq in range(first, min(self.count, first + n - 1) + 1):
                self.send_packet(seq)
                if self.done:
                    return
            self.deadline = self._clock() + T3
        elif data[0] == EOMA:
            self.result = TpCompleted(self.pgn, self.address, self.dest, self.data)
        elif data[0] == ABORT:
            self.result = TpAborted(
                self.pgn, self.address, self.dest, data[1], "peer", "receiver aborted"
            )

    def poll(self) -> None:
        """Pace BAM packets; abort an RTS/CTS transfer whose receiver went quiet (T3/T4)."""
        if self.done or self.deadline is None or self._clock() < self.deadline:
            return
        if self.dest == GLOBAL:
            self.send_packet(self._next_bam)
            self._next_bam += 1
            if self._next_bam > self.count:
                self.result = TpCompleted(self.pgn, self.address, self.dest, self.data)
            else:
                self.deadline = self._clock() + self._bam_interval
            return
        self.abort(ABORT_TIMEOUT)
        self.result = TpAborted(
            self.pgn, self.address, self.dest, ABORT_TIMEOUT, "timeout", "no CTS/EndOfMsgAck"
        )

    def _tx_cm(self, payload: bytes) -> None:
        self._send(make_id(self._priority, PGN_TP_CM, self.dest, self.address), payload)
