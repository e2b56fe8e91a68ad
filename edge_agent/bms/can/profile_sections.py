"""Profile sections for the CAN methods (GB/T 27930, UDS, DBC). Owned by the CAN backend.

Each section is a frozen dataclass validated by ``dataform.from_plain`` when the profile is
loaded, so a typo in a profile names the key path (``gm-hv-battery.dbc.fields.soc``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from edge_agent.dataform import bounded, length

# Identification DIDs (ISO 14229-1 annex C) and the reading field each fills. They describe the
# BMS controller (ECU), so they fill ``ecu.*`` fields, never the pack's identity; only F190 (the
# VIN of the vehicle the BMS was paired with) is not about the ECU.
STANDARD_DIDS: tuple[tuple[int, str], ...] = (
    (0xF18C, "ecu.serial"),  # ECU serial number
    (0xF190, "vin"),
    (0xF18A, "ecu.system_supplier_id"),  # system supplier identifier
    (0xF187, "ecu.part_number"),  # vehicle manufacturer spare part number
    (0xF188, "ecu.vm_software_number"),  # vehicle manufacturer ECU software number
    (0xF189, "ecu.vm_software_version"),  # vehicle manufacturer ECU software version
    (0xF18B, "ecu.manufacturing_date"),  # ECU manufacturing date
    (0xF191, "ecu.hardware_number"),  # vehicle manufacturer ECU hardware number
    (0xF192, "ecu.supplier_hardware_number"),  # system supplier ECU hardware number
    (0xF193, "ecu.supplier_hardware_version"),  # system supplier ECU hardware version
    (0xF194, "ecu.supplier_software_number"),  # system supplier ECU software number
    (0xF195, "ecu.supplier_software_version"),  # system supplier ECU software version
)
#: ISO 14229-2 defaults: P2 (server response) 50 ms, P2* (after NRC 0x78 "response pending")
#: 5000 ms. Profiles may override both for slow ECUs.
P2_DEFAULT_S = 0.05
P2_STAR_DEFAULT_S = 5.0


@dataclass(frozen=True, kw_only=True)
class GbtSection:
    """GB/T 27930 charger emulation parameters."""

    charger_address: int = bounded(0, 253, default=0x56)
    bms_address: int = bounded(0, 253, default=0xF4)
    period_s: float = bounded(0.01, 1.0, default=0.25)  # CHM/CRM repetition
    bhm_wait_s: float = bounded(0.0, 10.0, default=1.5)  # 2011-edition BMSs skip BHM
    brm_timeout_s: float = bounded(0.1, 30.0, default=5.0)
    bcp_timeout_s: float = bounded(0.1, 30.0, default=5.0)
    listen_s: float = bounded(0.0, 60.0, default=0.0)  # keep listening for BCS/BSM/BMV/BMT/BSD
    max_packets_per_cts: int = bounded(1, 255, default=255)


@dataclass(frozen=True, kw_only=True)
class UdsDid:
    """One profile-defined DID and how to decode it into a reading field."""

    did: int = bounded(0, 0xFFFF)
    field: str
    codec: Literal["ascii", "hex", "uint", "sint", "bcd_date"] = "ascii"
    start: int = bounded(0, 4095, default=0)  # first byte of the value in the payload
    length: int = bounded(0, 4095, default=0)  # 0 = to the end (ascii/hex) or 2 (numbers)
    byte_order: Literal["big", "little"] = "big"
    scale: float = 1.0
    offset: float = 0.0


@dataclass(frozen=True, kw_only=True)
class UdsSection:
    """UDS over ISO-TP: request/response ids and DIDs to read."""

    tx_id: int = bounded(0, 0x1FFFFFFF, default=0x7E0)
    rx_id: int = bounded(0, 0x1FFFFFFF, default=0x7E8)
    extended_ids: bool = False
    standard_dids: bool = True  # read the identification DIDs F187..F195
    dids: tuple[UdsDid, ...] = ()
    p2_s: float = bounded(0.001, 10.0, default=P2_DEFAULT_S)  # ISO 14229-2 P2 server max
    p2_star_s: float = bounded(0.01, 60.0, default=P2_STAR_DEFAULT_S)  # after NRC 0x78
    # the tester's allowance for adapter, bus and ISO-TP latency on top of P2 and P2*
    # (ISO 14229-2's delta P2): the tester waits P2 + latency, and P2* + latency once pending
    latency_s: float = bounded(0.0, 10.0, default=0.5)
    # overrides P2 + latency as the wait for the first answer (an old profile key)
    request_timeout_s: float | None = bounded(0.05, 10.0, default=None)

    @property
    def first_answer_s(self) -> float:
        """How long the tester waits for the first answer to a request (P2 client)."""
        if self.request_timeout_s is not None:
            return self.request_timeout_s
        return self.p2_s + self.latency_s

    @property
    def pending_answer_s(self) -> float:
        """How long the tester waits after each NRC 0x78 "response pending" (P2* client)."""
        return self.p2_star_s + self.latency_s

    tx_padding: int | None = bounded(0, 255, default=None)


@dataclass(frozen=True, kw_only=True)
class SignalPattern:
    """Signals whose names match ``pattern``; captured groups order them (numbers numerically)."""

    pattern: str = length(1, 200)
    count: int = bounded(0, 1024, default=0)  # take the first N in order (0 = all matches)
    skip_values: tuple[float, ...] = ()  # values meaning "no measurement" (e.g. 0)


@dataclass(frozen=True, kw_only=True)
class SerialSpec:
    """A serial number spread over several signals (often pages of a multiplexed message)."""

    signals: tuple[str, ...] = length(1, 64)
    encoding: Literal["ascii", "hex", "decimal"] = "ascii"


@dataclass(frozen=True, kw_only=True)
class DbcSection:
    """Passive decoding with a DBC file and a signal-to-field map."""

    file: str = length(1, 500)  # relative to the profile file
    strict: bool = False  # cantools strict loading (real DBCs often need False)
    fields: dict[str, str] = field(default_factory=dict)  # reading field -> signal name
    cell_voltages: SignalPattern | None = None
    temperatures: SignalPattern | None = None
    serial: SerialSpec | None = None
    faults: dict[str, str] = field(default_factory=dict)  # fault token -> signal (nonzero = set)
    constants: dict[str, str] = field(default_factory=dict)  # identity field -> fixed text
    listen_s: float = bounded(0.05, 60.0, default=2.0)  # upper bound; stops when all are seen


def check_can_sections(
    *, name: str, uds: UdsSection | None, dbc: DbcSection | None
) -> list[tuple[str, str]]:
    """Cross-field checks the types cannot express: (key path, problem) pairs."""
    from edge_agent.bms.can.reading import ECU_FIELDS, IDENTITY_FIELDS, STATE_FIELDS

    known = (IDENTITY_FIELDS - {"ecu"}) | STATE_FIELDS | ECU_FIELDS
    problems: list[tuple[str, str]] = []
    if uds is not None:
        for i, did in enumerate(uds.dids):
            if did.field not in known:
                problems.append(
                    (f"{name}.uds.dids[{i}].field", f"unknown reading field {did.field!r}")
                )
            if did.codec in ("ascii", "hex", "bcd_date") and did.field in STATE_FIELDS:
                problems.append(
                    (
                        f"{name}.uds.dids[{i}].codec",
                        f"{did.codec} gives text, {did.field} is a number",
                    )
                )
    if dbc is not None:
        for key in dbc.fields:
            if key not in known:
                problems.append((f"{name}.dbc.fields.{key}", "unknown reading field"))
        for key in dbc.constants:
            if key not in IDENTITY_FIELDS - {"ecu"}:
                problems.append(
                    (f"{name}.dbc.constants.{key}", "constants must be identity fields")
                )
    return problems
