"""GB/T 27930 charger emulation: CHM -> BHM -> CRM 0x00 -> BRM -> CRM 0xAA -> BCP [-> listen].

The agent plays the off-board charger only as far as the parameter-configuration stage. It
never sends CRO 0xAA and never requests current, so the BMS never closes its contactors.
``GbtCollector`` is the passive part (decode what arrives, including J1939 TP transfers) and
also serves replayed recordings; ``GbtSession`` adds the charger's periodic frames.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import can

from edge_agent.bms.can import gbt27930 as gbt
from edge_agent.bms.can import gbt27930_stop as stop
from edge_agent.bms.can.bus import BusSession
from edge_agent.bms.can.j1939_tp import PGN_TP_CM, PGN_TP_DT, TpAborted, TpReceiver, split_id
from edge_agent.bms.can.profile_sections import GbtSection
from edge_agent.bms.can.reading import ReadingBuilder
from edge_agent.errors import BusTimeoutError, FrameError, TransportError

log = logging.getLogger(__name__)

M = "gbt27930"


@dataclass
class GbtCollector:
    """Decodes BMS frames (single and TP) into the latest message of each kind."""

    section: GbtSection
    receiver: TpReceiver
    bhm: gbt.Bhm | None = None
    brm: gbt.Brm | None = None
    bcp: gbt.Bcp | None = None
    bcs: gbt.Bcs | None = None
    bsm: gbt.Bsm | None = None
    bmv: tuple[float, ...] = ()
    bmt: tuple[int, ...] = ()
    bsd: gbt.Bsd | None = None
    bst: tuple[str, ...] = ()  # stop, fault and error reasons of the last BST
    bem: tuple[str, ...] = ()  # timeouts of the last BEM
    bms_frames: int = 0
    aborts: list[TpAborted] = field(default_factory=list)
    frame_errors: list[FrameError] = field(default_factory=list)

    def feed(self, msg: can.Message) -> None:
        """Handle one received frame."""
        if not msg.is_extended_id or msg.is_error_frame or msg.is_remote_frame:
            return
        _, pgn, _dest, source = split_id(msg.arbitration_id)
        if source != self.section.bms_address:
            if pgn in (PGN_TP_CM, PGN_TP_DT) and self.receiver_passive:
                self._tp(msg)  # sniffed CTS/abort from the recorded charger
            return
        self.bms_frames += 1
        if pgn in (PGN_TP_CM, PGN_TP_DT):
            self._tp(msg)
        else:
            self._message(pgn, bytes(msg.data))

    @property
    def receiver_passive(self) -> bool:
        """True when the TP receiver only listens (replay)."""
        return self.receiver.passive

    def poll(self) -> None:
        """Expire TP timers."""
        for event in self.receiver.poll():
            if isinstance(event, TpAborted):
                self._aborted(event)

    def _tp(self, msg: can.Message) -> None:
        for event in self.receiver.on_frame(msg.arbitration_id, bytes(msg.data)):
            if isinstance(event, TpAborted):
                self._aborted(event)
            else:
                self._message(event.pgn, event.data)

    def _aborted(self, event: TpAborted) -> None:
        name = gbt.PGNS.get(event.pgn, (f"PGN {event.pgn:#x}", 0))[0]
        log.info(
            "gbt27930: %s transfer ended (%s, reason %d): %s",
            name,
            event.by,
            event.reason,
            event.detail,
        )
        self.aborts.append(event)

    def _message(self, pgn: int, data: bytes) -> None:
        name = gbt.PGNS.get(pgn, ("?", 0))[0]
        try:
            if name == "BHM":
                self.bhm = gbt.decode_bhm(data)
            elif name == "BRM":
                self.brm = gbt.decode_brm(data)
            elif name == "BCP":
                self.bcp = gbt.decode_bcp(data)
            elif name == "BCS":
                self.bcs = gbt.decode_bcs(data)
            elif name == "BSM":
                self.bsm = gbt.decode_bsm(data)
            elif name == "BMV":
                self.bmv = gbt.decode_bmv(data)
            elif name == "BMT":
                self.bmt = gbt.decode_bmt(data)
            elif name == "BSD":
                self.bsd = gbt.decode_bsd(data)
            elif name == "BST":
                self.bst = stop.decode_bst(data)
            elif name == "BEM":
                self.bem = stop.decode_bem(data)
        except FrameError as exc:
            log.warning("gbt27930: %s", exc)
            self.frame_errors.append(exc)

    def apply(self, out: ReadingBuilder) -> None:
        """Write everything decoded so far into ``out``."""
        if self.brm is not None:
            b, tag = self.brm, f"{M}:BRM"
            for name, value in (
                ("manufacturer", b.manufacturer),
                ("serial", b.serial),
                ("vin", b.vin),
                ("production_date", b.production_date),
                ("battery_type", b.battery_type),
                ("rated_capacity", b.rated_capacity_ah),
                ("rated_voltage", b.rated_voltage_v),
                ("software_version", b.software_version),
                ("protocol_version", b.protocol_version),
                ("charge_count", b.charge_count),  # charges counted by the BMS, not cycles
            ):
                out.put(name, value, tag)
            out.problems.extend(b.problems)
        if self.bcs is not None:
            _put(out, "pack_voltage", self.bcs.voltage_v, f"{M}:BCS", "0xFFFF")
            _put(out, "current", self.bcs.current_a, f"{M}:BCS", "0xFFFF")
            _put(out, "soc", self.bcs.soc_pct, f"{M}:BCS", "0xFF")
        if self.bcp is not None:
            _put(out, "rated_energy", self.bcp.rated_energy_kwh, f"{M}:BCP", "0xFFFF")
            _put(out, "pack_voltage", self.bcp.pack_voltage_v, f"{M}:BCP", "0xFFFF")
            _put(out, "soc", self.bcp.soc_pct, f"{M}:BCP", "0xFFFF")
        out.put_cells(self.bmv, f"{M}:BMV")
        if self.bmv:  # the per-cell list beats the BSD/BCS extremes
            out.put("cell_voltage_min", min(self.bmv), f"{M}:BMV")
            out.put("cell_voltage_max", max(self.bmv), f"{M}:BMV")
        out.put_temperatures(tuple(float(t) for t in self.bmt))
        if self.bsm is not None:
            for name, temp in (
                ("temperature_max", self.bsm.max_temperature_c),
                ("temperature_min", self.bsm.min_temperature_c),
            ):
                if temp is None:
                    out.put_unavailable(name, "0xFF", f"{M}:BSM", "byte 0xFF = not available")
                else:
                    out.put(name, float(temp), f"{M}:BSM")
            for token in self.bsm.faults:
                out.fault(token)
        for token in (*self.bst, *self.bem):
            out.fault(token)
        if self.bsd is not None:
            out.put("cell_voltage_min", self.bsd.min_cell_voltage_v, f"{M}:BSD")
            out.put("cell_voltage_max", self.bsd.max_cell_voltage_v, f"{M}:BSD")
        if self.bcs is not None:
            out.put("cell_voltage_max", self.bcs.max_cell_voltage_v, f"{M}:BCS")


def _put(out: ReadingBuilder, name: str, value: float | None, tag: str, raw: str) -> None:
    """A decoded number, or the "not available" code it came as (None from the decoder)."""
    if value is None:
        out.put_unavailable(name, raw, tag, f"{raw} = not available")
    else:
        out.put(name, float(value), tag)


class GbtSession:
    """One charger-emulation exchange on an open bus."""

    def __init__(
        self, bus: BusSession, section: GbtSection, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.bus = bus
        self.section = section
        self._clock = clock
        send = None if bus.replay else self._send_tp
        receiver = TpReceiver(
            address=section.charger_address,
            send=send,
            clock=self._clock,
            max_packets_per_cts=section.max_packets_per_cts,
        )
        self.collector = GbtCollector(section=section, receiver=receiver)

    def _send_tp(self, can_id: int, data: bytes) -> None:
        self.bus.send(can_id, data)

    def _send(self, name: str, data: bytes) -> None:
        s = self.section
        self.bus.send(gbt.can_id(name, source=s.charger_address, dest=s.bms_address), data)

    async def run(self, budget_s: float) -> GbtCollector:
        """Run the handshake within ``budget_s``; typed errors when no BRM could be read."""
        s, c = self.section, self.collector
        start = self._clock()
        end = start + budget_s
        listen_end: float | None = None
        phase, phase_start, next_tx = "CHM", start, start
        queue = self.bus.listen()
        try:
            while True:
                now = self._clock()
                if phase == "CHM" and (c.bhm is not None or now - phase_start >= s.bhm_wait_s):
                    phase, phase_start, next_tx = "CRM00", now, now
                if phase in ("CHM", "CRM00") and c.brm is not None:
                    phase, phase_start, next_tx = "CRMAA", now, now
                if phase == "CRM00" and now - phase_start >= s.brm_timeout_s:
                    break
                if phase == "CRMAA" and c.bcp is not None:
                    if s.listen_s <= 0:
                        break
                    phase, listen_end = "LISTEN", now + s.listen_s
                if phase == "CRMAA" and now - phase_start >= s.bcp_timeout_s:
                    break
                if (listen_end is not None and now >= listen_end) or now >= end:
                    break
                if now >= next_tx:
                    if phase == "CHM":
                        self._send("CHM", gbt.encode_chm())
                    else:
                        self._send("CRM", gbt.encode_crm(phase != "CRM00"))
                    next_tx = now + s.period_s
                wake = min(next_tx, end, listen_end or end)
                tp_deadline = c.receiver.next_deadline()
                if tp_deadline is not None:
                    wake = min(wake, tp_deadline)
                msg = await queue.get(wake - self._clock())
                if msg is not None:
                    c.feed(msg)
                elif self.bus.exhausted:
                    break
                c.poll()
        finally:
            self.bus.unlisten(queue)
        self._raise_if_nothing(self._clock() - start)
        return c

    def _raise_if_nothing(self, waited: float) -> None:
        c, s = self.collector, self.section
        if c.brm is not None:
            return
        bitrate = self.bus.settings.bitrate
        if c.bms_frames == 0:
            raise BusTimeoutError(
                f"no frame from BMS address {s.bms_address:#04x} within {waited:.1f} s at "
                f"{bitrate} bit/s (silent bus, pack asleep or wrong bitrate)"
            )
        if c.aborts:
            last = c.aborts[-1]
            raise TransportError(
                f"BRM transfer failed {len(c.aborts)} time(s); last: {last.detail} "
                f"(J1939 abort reason {last.reason}, by {last.by})"
            )
        if c.frame_errors:
            raise c.frame_errors[-1]
        raise BusTimeoutError(f"BMS answered but sent no BRM within {waited:.1f} s")


def problems_of(c: GbtCollector, section: GbtSection) -> list[str]:
    """Reasons why a GB/T reading is only partial."""
    out: list[str] = []
    if c.bcp is None:
        out.append("gbt27930: no BCP received after CRM 0xAA")
        out.extend(f"gbt27930: TP transfer of PGN {a.pgn:#x} ended: {a.detail}" for a in c.aborts)
    if section.listen_s > 0 and c.bcs is None and c.bsm is None:
        out.append(f"gbt27930: no BCS/BSM within the {section.listen_s:g} s listen window")
    if c.bcp is None or (section.listen_s > 0 and c.bcs is None):
        out.extend(f"gbt27930: {e}" for e in c.frame_errors)
    return out
