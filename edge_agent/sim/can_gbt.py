"""A GB/T 27930 BMS simulator: answers a charger's handshake with BHM, BRM (over J1939 TP) and
BCP, then broadcasts BCS/BSM/BMV/BMT/BSD while the charger stays in the configuration stage.

Misbehaviour for fault tests: silence, dropped or duplicated TP packets, aborted transfers,
wrong lengths (DLC errors), and a slow start. In-process::

    with GbtBmsSimulator(channel="bench0", cells=(3.3,) * 96) as sim:
        can = CanSettings(interface="virtual", channel="bench0")
        reading = await read_bms(profile, BmsSettings(can=can), 8)
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, replace
from typing import Any

import can

from edge_agent.bms.can import gbt27930 as gbt
from edge_agent.bms.can import gbt27930_encode as enc
from edge_agent.bms.can import gbt27930_stop as stop
from edge_agent.bms.can.j1939_tp import (
    GLOBAL,
    PGN_TP_CM,
    TpCompleted,
    split_id,
)
from edge_agent.bms.can.j1939_tp_sender import TpSender
from edge_agent.sim.can_runner import SimRunner

log = logging.getLogger(__name__)

DEFAULT_BRM = gbt.Brm(
    protocol_version="V1.1",
    battery_type="ncm",
    rated_capacity_ah=150.0,
    rated_voltage_v=355.2,
    manufacturer="CATL",
    serial="1234",
    production_date="2021-06-15",
    charge_count=312,
    vehicle_owned=True,
    vin="LSVAU2180N2183294",
    software_version="0102030405060708",
)


def default_bcp(cells: int) -> gbt.Bcp:
    """Charging parameters consistent with ``cells`` NCM cells in series."""
    return gbt.Bcp(
        max_cell_charge_voltage_v=4.2,
        max_charge_current_a=250.0,
        rated_energy_kwh=53.3,
        max_charge_voltage_v=round(4.2 * cells, 1),
        max_temperature_c=55,
        soc_pct=56.3,
        pack_voltage_v=round(3.7 * cells, 1),
    )


@dataclass(frozen=True, kw_only=True)
class GbtSimConfig:
    """Identity, state and misbehaviour of the simulated BMS."""

    brm: gbt.Brm = DEFAULT_BRM
    brm_length: int = 49  # 8, 41 or 49; anything else is a wrong-length BRM
    bcp: gbt.Bcp | None = None  # default derived from the cells
    cells: tuple[float, ...] = (3.70, 3.71, 3.69, 3.72) * 24
    temperatures: tuple[int, ...] = (24, 25, 26, 25, 24, 23, 25, 26)
    current_a: float = -1.5
    soc_pct: int = 56
    faults: tuple[str, ...] = ()  # BSM tokens, e.g. ("insulation",)
    bst: tuple[str, ...] = ()  # BST reasons (gbt27930_stop tokens): sent when not empty
    bem: tuple[str, ...] = ()  # BEM timeouts (gbt27930_stop tokens): sent when not empty
    send_bhm: bool = True
    silent: bool = False  # pack asleep / wrong bitrate: never answers
    status_period_s: float = 0.25
    # misbehaviour of the J1939 transport (applies to BRM transfers)
    drop_packets: tuple[int, ...] = ()  # TP.DT sequence numbers dropped on first send
    drop_always: bool = False  # drop them on every retransmission too
    duplicate_packets: tuple[int, ...] = ()
    abort_after_packets: int | None = None  # abort the BRM transfer after N packets
    abort_transfers: int = 1  # how many BRM transfers to abort (0 = every one)
    use_bam: bool = False  # broadcast TP messages with BAM instead of RTS/CTS
    bhm_length: int = 2  # DLC error when not 2
    bsm_length: int = 7
    # raw BSM temperature bytes (max, min), e.g. (0xFF, 0xFF) = "not available"; None = encode
    bsm_temperature_bytes: tuple[int, int] | None = None


@dataclass
class _Tx:
    name: str
    data: bytes


class GbtBms:
    """The BMS state machine (no thread, no bus: the runner drives it)."""

    def __init__(
        self, config: GbtSimConfig, *, address: int = gbt.BMS, charger: int = gbt.CHARGER
    ) -> None:
        self.config = config
        self.address = address
        self.charger = charger
        self._send: Any = None
        self.stage = "idle"
        self.seen: list[str] = []  # names of charger messages received, in order
        self.cro_ready_seen = False
        self.transfers_started = 0
        self.transfers_aborted = 0
        self._sender: TpSender | None = None
        self._queue: deque[_Tx] = deque()
        self._dropped: set[int] = set()
        self._next_brm = 0.0
        self._next_status = 0.0
        self._now = 0.0

    def attach(self, send: Any) -> None:
        """Receive the runner's send callable."""
        self._send = send

    # --- helpers -------------------------------------------------------------------------

    def _tx(self, name: str, data: bytes) -> None:
        self._send(gbt.can_id(name, source=self.address, dest=self.charger), data)

    def _tx_raw(self, can_id: int, data: bytes) -> None:
        _, pgn, _, _ = split_id(can_id)
        if pgn == 0xEB00 and self._sender is not None and self._sender.pgn == 0x0200:
            seq = data[0]
            if seq in self.config.drop_packets and (
                self.config.drop_always or seq not in self._dropped
            ):
                self._dropped.add(seq)
                return
            if seq in self.config.duplicate_packets:
                self._send(can_id, data)
        self._send(can_id, data)
        sender = self._sender
        c = self.config
        if (
            sender is not None
            and pgn == 0xEB00
            and sender.pgn == 0x0200
            and c.abort_after_packets is not None
            and sender.packets_sent >= c.abort_after_packets
            and (c.abort_transfers == 0 or self.transfers_aborted < c.abort_transfers)
        ):
            self.transfers_aborted += 1
            sender.abort()

    def _message(self, name: str, data: bytes) -> None:
        """Send one GB/T message: single frame up to 8 bytes, J1939 TP beyond."""
        if len(data) <= 8:
            self._tx(name, data)
        elif all(t.name != name for t in self._queue):  # a slow peer must not grow the queue
            self._queue.append(_Tx(name, data))

    def _pump(self, now: float) -> None:
        if self._sender is not None and self._sender.done:
            self._sender = None
        if self._sender is None and self._queue:
            item = self._queue.popleft()
            pgn = gbt.PGN_BY_NAME[item.name]
            if pgn == 0x0200:
                self.transfers_started += 1
            self._sender = TpSender(
                address=self.address,
                dest=GLOBAL if self.config.use_bam else self.charger,
                pgn=pgn,
                data=item.data,
                send=self._tx_raw,
                clock=lambda: self._now,
            )
            self._sender.start()

    # --- runner interface ----------------------------------------------------------------

    def on_message(self, msg: can.Message, now: float) -> None:
        """React to the charger."""
        self._now = now
        if not msg.is_extended_id or self.config.silent:
            return
        _, pgn, dest, source = split_id(msg.arbitration_id)
        if source != self.charger or dest != self.address:
            return
        data = bytes(msg.data)
        if pgn == PGN_TP_CM:
            if self._sender is not None:
                self._sender.on_frame(msg.arbitration_id, data)
                if self._sender.done and isinstance(self._sender.result, TpCompleted):
                    log.debug("sim: %#x delivered", self._sender.pgn)
            self._pump(now)
            return
        name = gbt.PGNS.get(pgn, ("?", 0))[0]
        self.seen.append(name)
        c = self.config
        if name == "CHM" and c.send_bhm:
            bhm = enc.encode_bhm(self._bcp().max_charge_voltage_v)
            self._tx("BHM", (bhm + b"\xff" * 8)[: c.bhm_length])
        elif name == "CRM" and data[:1] == b"\x00":
            self.stage = "recognition"
            if now >= self._next_brm and not self._brm_pending():
                self._next_brm = now + 0.25
                self._message("BRM", enc.encode_brm(c.brm, length=c.brm_length))
        elif name == "CRM" and data[:1] == b"\xaa":
            if self.stage != "config":
                self.stage = "config"
                self._next_status = now
        elif name == "CRO" and data[:1] == b"\xaa":
            self.cro_ready_seen = True  # a charger that would start charging: tests assert never
        self._pump(now)

    def _brm_pending(self) -> bool:
        pending = any(t.name == "BRM" for t in self._queue)
        return pending or (self._sender is not None and self._sender.pgn == 0x0200)

    def _bcp(self) -> gbt.Bcp:
        return self.config.bcp or default_bcp(len(self.config.cells))

    def tick(self, now: float) -> float:
        """Periodic frames of the configuration stage, TP timers."""
        self._now = now
        if self._sender is not None:
            self._sender.poll()
        if self.stage == "config" and now >= self._next_status:
            self._next_status = now + self.config.status_period_s
            self._status_frames()
        self._pump(now)
        wake = self._next_status if self.stage == "config" else now + 0.05
        if self._sender is not None and self._sender.deadline is not None:
            wake = min(wake, self._sender.deadline)
        return wake

    def _status_frames(self) -> None:
        c = self.config
        cells = c.cells
        self._message("BCP", enc.encode_bcp(self._bcp()))
        self._tx("BRO", b"\x00")  # not ready: we never get to charging
        voltage = round(sum(cells), 1)
        hi = max(cells) if cells else 0.0
        self._message(
            "BCS",
            enc.encode_bcs(gbt.Bcs(voltage, c.current_a, hi, 1, c.soc_pct, 0)),
        )
        temps = c.temperatures or (25,)
        hi_i = cells.index(hi) + 1 if cells else 1
        bsm = gbt.Bsm(
            max_voltage_cell=hi_i,
            max_temperature_c=max(temps),
            max_temperature_probe=temps.index(max(temps)) + 1,
            min_temperature_c=min(temps),
            min_temperature_probe=temps.index(min(temps)) + 1,
            faults=c.faults,
            charge_allowed=not c.faults,
        )
        payload = bytearray(enc.encode_bsm(bsm))
        if c.bsm_temperature_bytes is not None:
            payload[1], payload[3] = c.bsm_temperature_bytes
        self._tx("BSM", bytes(payload[: c.bsm_length]))
        if cells:
            self._message("BMV", enc.encode_bmv(cells))
        if c.temperatures:
            self._message("BMT", enc.encode_bmt(c.temperatures).ljust(9, b"\xff"))
        if cells:
            bsd = gbt.Bsd(c.soc_pct, min(cells), hi, min(temps), max(temps))
            self._tx("BSD", enc.encode_bsd(bsd))
        if c.bst:
            self._tx("BST", stop.encode_fields(stop.BST_FIELDS, c.bst))
        if c.bem:
            self._tx("BEM", stop.encode_fields(stop.BEM_FIELDS, c.bem))


class GbtBmsSimulator(SimRunner):
    """A GB/T 27930 BMS on its own bus and thread (start()/stop() or a context manager)."""

    def __init__(
        self,
        *,
        channel: str = "vcan0",
        interface: str = "virtual",
        bitrate: int = 250_000,
        bus: can.BusABC | None = None,
        config: GbtSimConfig | None = None,
        identity: gbt.Brm | None = None,
        cells: tuple[float, ...] | None = None,
        **misbehaviour: Any,
    ) -> None:
        cfg = config or GbtSimConfig()
        changes: dict[str, Any] = dict(misbehaviour)
        if identity is not None:
            changes["brm"] = identity
        if cells is not None:
            changes["cells"] = tuple(cells)
        if changes:
            cfg = replace(cfg, **changes)
        self.bms = GbtBms(cfg)
        super().__init__([self.bms], bus=bus, interface=interface, channel=channel, bitrate=bitrate)
