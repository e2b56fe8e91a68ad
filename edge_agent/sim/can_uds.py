"""A UDS ECU simulator answering ReadDataByIdentifier (0x22) and TesterPresent (0x3E) over ISO-TP.

Configurable DIDs, negative responses per DID, silent DIDs (no answer: the tester times out)
and "response pending" (NRC 0x78) before the real answer. Driven by ``SimRunner`` so it can
share a bus with the other CAN simulators.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import can
import isotp

from edge_agent.sim.can_runner import SimRunner

log = logging.getLogger(__name__)

DEFAULT_DIDS: dict[int, bytes] = {
    0xF187: b"24A915B-00",
    0xF18A: b"LGES",
    0xF18B: bytes.fromhex("220314"),
    0xF18C: b"BMS0042137755",
    0xF190: b"WVWZZZE1ZPP012345",
    0xF191: b"HW-5Q0915",
    0xF193: b"H07",
    0xF195: b"S0815",
}


@dataclass(frozen=True, kw_only=True)
class UdsSimConfig:
    """What the ECU answers."""

    tx_id: int = 0x7EC  # ECU -> tester (the BMS's OBD-style ids, ISO 15765-4 ECU #5)
    rx_id: int = 0x7E4  # tester -> ECU
    extended_ids: bool = False
    dids: dict[int, bytes] = field(default_factory=lambda: dict(DEFAULT_DIDS))
    nrc: dict[int, int] = field(default_factory=dict)  # DID -> negative response code
    silent_dids: tuple[int, ...] = ()
    pending_dids: tuple[int, ...] = ()  # answer 0x78 "response pending" first
    pending_count: int = 1  # how many 0x78 answers precede the real one
    answer_delay_s: float = 0.0  # pending DIDs: the real answer this long after the request
    silent: bool = False


class UdsEcu:
    """ISO-TP + a tiny UDS server (no thread of its own)."""

    def __init__(self, config: UdsSimConfig) -> None:
        self.config = config
        self._rx: deque[isotp.CanMessage] = deque()
        self._send: Any = None
        self._due: list[tuple[float, bytes]] = []  # (monotonic time, response) not yet sent
        self.requests: list[bytes] = []
        mode = (
            isotp.AddressingMode.Normal_29bits
            if config.extended_ids
            else isotp.AddressingMode.Normal_11bits
        )
        self._layer = isotp.TransportLayerLogic(
            rxfn=self._rxfn,
            txfn=self._txfn,
            address=isotp.Address(mode, txid=config.tx_id, rxid=config.rx_id),
            params={"tx_padding": 0xAA},
        )

    def attach(self, send: Any) -> None:
        """Receive the runner's send callable."""
        self._send = send

    def _rxfn(self, timeout: float) -> isotp.CanMessage | None:  # never blocks: a deque
        return self._rx.popleft() if self._rx else None

    def _txfn(self, msg: isotp.CanMessage) -> None:
        self._send(msg.arbitration_id, bytes(msg.data), msg.is_extended_id)

    def on_message(self, msg: can.Message, now: float) -> None:
        """Queue frames addressed to the ECU."""
        if self.config.silent or msg.arbitration_id != self.config.rx_id:
            return
        self._rx.append(
            isotp.CanMessage(
                arbitration_id=msg.arbitration_id,
                dlc=msg.dlc,
                data=bytes(msg.data),
                extended_id=msg.is_extended_id,
            )
        )
        self.tick(now)

    def tick(self, now: float) -> float:
        """Run the ISO-TP state machine and answer complete requests."""
        self._layer.process()
        while self._layer.available():
            request = self._layer.recv()
            if request is not None:
                self._answer(bytes(request), now)
        self._due.sort(key=lambda item: item[0])
        while self._due and self._due[0][0] <= now:
            self._layer.send(self._due.pop(0)[1])
        self._layer.process()
        wake = now + 0.005 if self._layer.transmitting() else now + 0.05
        return min([wake, *(at for at, _ in self._due)])

    def _answer(self, request: bytes, now: float = 0.0) -> None:
        self.requests.append(request)
        c = self.config
        if not request:
            return
        sid = request[0]
        if sid == 0x3E:
            if len(request) < 2 or not request[1] & 0x80:
                self._layer.send(b"\x7e\x00")
            return
        if sid != 0x22:
            self._layer.send(bytes((0x7F, sid, 0x11)))  # service not supported
            return
        if len(request) != 3:
            self._layer.send(b"\x7f\x22\x13")  # incorrect message length
            return
        did = int.from_bytes(request[1:3], "big")
        if did in c.silent_dids:
            return
        final_at = now
        if did in c.pending_dids:
            count = max(1, c.pending_count)
            for i in range(count):  # spread over the delay, the first one at once
                self._due.append((now + c.answer_delay_s * i / count, b"\x7f\x22\x78"))
            final_at = now + c.answer_delay_s
        if did in c.nrc:
            answer = bytes((0x7F, 0x22, c.nrc[did]))
        elif did in c.dids:
            answer = b"\x62" + request[1:3] + c.dids[did]
        else:
            answer = b"\x7f\x22\x31"  # request out of range
        self._due.append((final_at + 1e-6 if did in c.pending_dids else final_at, answer))


class UdsEcuSimulator(SimRunner):
    """A UDS ECU on its own bus and thread (start()/stop() or a context manager)."""

    def __init__(
        self,
        *,
        channel: str = "vcan0",
        interface: str = "virtual",
        bitrate: int = 500_000,
        bus: can.BusABC | None = None,
        config: UdsSimConfig | None = None,
    ) -> None:
        self.ecu = UdsEcu(config or UdsSimConfig())
        super().__init__([self.ecu], bus=bus, interface=interface, channel=channel, bitrate=bitrate)
