"""Readings, pack identity and the identification event (schema v1): plain typed data.

Every class is a frozen, keyword-only dataclass. ``dataform.to_plain`` turns them into the
CBOR/JSON form (absent values are omitted) and ``dataform.from_plain`` validates that form back
into objects. The schema in ``schemas/`` (CDDL and JSON Schema) describes exactly this form;
``tests/test_schema_sync.py`` keeps the three in step.

Units are SI-ish and fixed per field (documented below); a ``Value`` additionally carries its
unit and the acquisition method so a backend never has to guess what a number means.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from edge_agent.dataform import bounded, length, pattern

SCHEMA_VERSION = 1

ReadingStatus = Literal["ok", "partial", "failed", "absent"]
CheckStatus = Literal["pass", "warn", "fail", "skip"]
TransportClass = Literal["normal", "damaged_defective", "critical", "undiagnosable"]
Disposition = Literal["reuse_candidate", "material_recycling", "expert_review"]
ClockState = Literal["synced", "unsynced", "unknown"]
# --- truth of values and faults (issue 14) ---
# unavailable: the protocol's "no data" code (e.g. GB/T 27930 byte 0xFF) or not a number;
# implausible: outside what the quantity can physically be (SOH 6500 %, a 40.95 V cell)
ValueQuality = Literal["unavailable", "implausible"]
UUID7_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


@dataclass(frozen=True, kw_only=True)
class Value:
    """One measured or read value with its unit (``""`` for text) and how it was obtained."""

    value: str | int | float | bool
    unit: str = ""
    method: str = ""  # e.g. "gbt27930:BRM", "uds:F18C", "dbc:BMS_packVoltage", "sunspec:802.SoH"
    # --- truth of values (issue 14): absent = plausible (or not checked). A marked value is
    # kept as evidence and never drives triage; an unavailable one holds the raw code as text.
    quality: ValueQuality | None = None
    note: str | None = None  # why it is marked: "outside 0..100 %", "byte 0xFF = not available"


# --- BMS ------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class BmsIdentity:
    """What the BMS says the pack is. Text values have unit ""."""

    manufacturer: Value | None = None
    model: Value | None = None
    serial: Value | None = None
    vin: Value | None = None
    part_number: Value | None = None
    production_date: Value | None = None  # ISO 8601 date text
    battery_type: Value | None = None  # chemistry token: lfp, ncm, lmo, lto, nimh, ...
    rated_capacity: Value | None = None  # Ah
    rated_voltage: Value | None = None  # V
    rated_energy: Value | None = None  # kWh
    software_version: Value | None = None
    hardware_version: Value | None = None
    protocol_version: Value | None = None
    # further identifiers keyed by where they came from: "uds:F191" (a second hardware number),
    # "sunspec:805.SN.1.3" (string 1, module 3 serial): the pack -> module links of GB/T 34014
    other_ids: dict[str, Value] | None = None
    # --- identity kept apart (issue 14): the BMS controller itself, never the pack ---
    ecu: EcuIdentity | None = None
    device: DeviceIdentity | None = None


@dataclass(frozen=True, kw_only=True)
class DeviceIdentity:
    """The device that answered, as SunSpec common model 1 describes it (Mn, Md, SN, Vr,
    Opt): the BMS or battery-system controller, never the pack's maker or serial."""

    manufacturer: Value | None = None  # SunSpec 1 Mn
    model: Value | None = None  # SunSpec 1 Md
    serial: Value | None = None  # SunSpec 1 SN (the device's serial)
    version: Value | None = None  # SunSpec 1 Vr
    options: Value | None = None  # SunSpec 1 Opt


@dataclass(frozen=True, kw_only=True)
class EcuIdentity:
    """The BMS controller (ECU) as its ISO 14229-1 identification DIDs describe it."""

    part_number: Value | None = None  # F187 vehicle manufacturer spare part number
    vm_software_number: Value | None = None  # F188 vehicle manufacturer ECU software number
    vm_software_version: Value | None = None  # F189 vehicle manufacturer ECU software version
    system_supplier_id: Value | None = None  # F18A system supplier identifier
    manufacturing_date: Value | None = None  # F18B ECU manufacturing date (ISO 8601 date text)
    serial: Value | None = None  # F18C ECU serial number
    hardware_number: Value | None = None  # F191 vehicle manufacturer ECU hardware number
    supplier_hardware_number: Value | None = None  # F192 system supplier ECU hardware number
    supplier_hardware_version: Value | None = None  # F193 system supplier ECU hardware version
    supplier_software_number: Value | None = None  # F194 system supplier ECU software number
    supplier_software_version: Value | None = None  # F195 system supplier ECU software version


@dataclass(frozen=True, kw_only=True)
class BmsState:
    """Pack condition as reported by the BMS."""

    pack_voltage: Value | None = None  # V
    current: Value | None = None  # A, positive = discharge
    soc: Value | None = None  # %
    soh: Value | None = None  # %
    cell_voltage_min: Value | None = None  # V
    cell_voltage_max: Value | None = None  # V
    cell_voltage_mean: Value | None = None  # V
    cell_voltage_spread: Value | None = None  # V (max - min)
    cell_voltages: tuple[float, ...] = ()  # V, index order of the BMS
    temperature_min: Value | None = None  # degC
    temperature_max: Value | None = None  # degC
    temperatures: tuple[float, ...] = ()  # degC, probe order
    cycle_count: Value | None = None  # 1, full cycles (SunSpec NCyc)
    charge_count: Value | None = None  # 1, charge events (GB/T 27930 BRM): not cycles (issue 14)
    insulation_resistance: Value | None = None  # kOhm
    faults: tuple[str, ...] = ()  # stable tokens: "insulation", "cell_overvoltage", ...


@dataclass(frozen=True, kw_only=True)
class BmsReading:
    """Result of reading one pack's BMS by one or more methods."""

    status: ReadingStatus
    transport: str = ""  # "can", "modbus", "replay"
    methods: tuple[str, ...] = ()  # "gbt27930", "uds", "dbc", "sunspec", "regmap"
    profile: str = ""
    identity: BmsIdentity = field(default_factory=BmsIdentity)
    state: BmsState = field(default_factory=BmsState)
    problems: tuple[str, ...] = ()  # human-readable reasons for partial/failed
    duration_ms: float | None = None


# --- label ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LabelCode:
    """One symbol decoded from the label photo."""

    symbology: str  # "QRCode", "DataMatrix", "Code128", "MicroQRCode", ...
    text: str
    kind: str  # "gbt34014", "gbt34014_cascade", "passport", "gs1", "iso15434", "text"
    fields: dict[str, str] = field(default_factory=dict)  # parsed fields of the kind
    position: tuple[tuple[int, int], ...] = ()  # corner points in the photo, clockwise
    decode_pass: str = ""


@dataclass(frozen=True, kw_only=True)
class LabelField:
    """One value read from the label, where it came from and how sure the reading is."""

    name: str  # "pack_code", "rated_voltage_v", "rated_capacity_ah", "rated_energy_kwh", ...
    value: str
    source: Literal["barcode", "ocr"]
    confidence: float = bounded(0.0, 1.0)
    position: tuple[tuple[int, int], ...] = ()  # symbol corners or OCR text region in the photo


@dataclass(frozen=True, kw_only=True)
class ImageQuality:
    """Quality metrics of the frame the codes were read from."""

    sharpness: float  # variance of Laplacian at normalised size
    brightness: float  # mean grey level 0..255
    clipped_highlights: float  # fraction 0..1
    clipped_shadows: float  # fraction 0..1
    glare: float  # fraction 0..1 of saturated blobs
    passed: bool
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class LabelReading:
    """Result of photographing and decoding the pack label."""

    status: ReadingStatus
    codes: tuple[LabelCode, ...] = ()
    quality: ImageQuality | None = None
    photo_sha256: str | None = pattern(r"[0-9a-f]{64}", default=None)
    frames: int = 0
    problems: tuple[str, ...] = ()
    duration_ms: float | None = None
    fields: tuple[LabelField, ...] | None = None  # pack code and nameplate values, with source
    ocr_check: Literal["pass", "fail"] | None = None  # OCR'd code vs barcode code, when both ran


# --- nodes ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class WeightReading:
    """Pack mass from a scale node."""

    status: ReadingStatus
    mass_kg: float | None = None
    stable: bool = False
    division_kg: float | None = None  # scale division e
    indicative: bool = True  # not legal-for-trade unless the node says otherwise
    node_id: str = ""
    problems: tuple[str, ...] = ()
    duration_ms: float | None = None


@dataclass(frozen=True, kw_only=True)
class SensorReading:
    """Bench sensors from a sensor node at the time of identification."""

    status: ReadingStatus
    node_id: str = ""
    temperatures_c: tuple[float, ...] = ()
    gas_level: float | None = None  # normalised 0..1 (ADC fraction)
    gas_alarm: bool = False
    docked: bool | None = None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Readings:
    """All per-source readings of one identification."""

    bms: BmsReading
    label: LabelReading
    weight: WeightReading
    sensors: SensorReading | None = None


# --- identity, checks, triage ---------------------------------------------------------------


# --- identity kept apart (issue 14) ---
ProductLevel = Literal["pack", "module", "cell"]  # GB/T 34014 product type P, M, C
DateConfidence = Literal["confirmed", "extrapolated"]  # of a date read from a GB/T 34014 code


@dataclass(frozen=True, kw_only=True)
class PackIdentity:
    """The reconciled identity of the pack."""

    pack_code: str | None = None  # GB/T 34014 code (24 or 19 characters)
    code_kind: str | None = None  # "gbt34014", "gbt34014_cascade"
    passport_id: str | None = None  # EU battery passport identifier or URL
    manufacturer: str | None = None
    battery_type: str | None = None  # chemistry token
    production_date: str | None = None  # ISO date
    serial: str | None = None
    vin: str | None = None
    rated_energy_kwh: float | None = None
    source: dict[str, str] = field(default_factory=dict)  # field -> "label" | "bms" | "both"
    # --- identity kept apart (issue 14): facts about the pack only ----------------------------
    # pack_code holds only a product-level P code; ``manufacturer`` (kept for v1 readers) is
    # the name when one is known, never a bare code; ``serial`` only a unique serial (not the
    # GB/T 34014 7-digit daily sequence).
    product_level: ProductLevel | None = None  # of pack_code (GB/T 34014 position 4)
    manufacturer_code: str | None = None  # GB/T 34014 manufacturer code, e.g. "001"
    manufacturer_name: str | None = None  # e.g. "CATL" (BMS, or the site's code table)
    rated_capacity_ah: float | None = None  # Ah
    nominal_voltage_v: float | None = None  # V
    production_date_confidence: DateConfidence | None = None
    # module and cell codes read, not the pack's (None, not empty, so old events stay as they were)
    component_codes: tuple[ComponentCode, ...] | None = None


@dataclass(frozen=True, kw_only=True)
class ComponentCode:
    """A GB/T 34014 module or cell code read at the bench (flagged by a check)."""

    code: str
    product_level: ProductLevel
    source: str  # "label" or the BMS method tag, e.g. "uds:F18C", "sunspec:805.SN.1.3"


@dataclass(frozen=True, kw_only=True)
class Check:
    """One cross-check between sources."""

    name: str  # stable token: "label_vs_bms.manufacturer", "weight_vs_energy", ...
    status: CheckStatus
    detail: str


@dataclass(frozen=True, kw_only=True)
class Triage:
    """Transport class and disposition with the reasons that led to them."""

    transport_class: TransportClass
    packing_instruction: str  # "P903", "P908", "P911", "P909"
    disposition: Disposition
    reasons: tuple[str, ...] = ()
    next_step: str = ""
    # --- truth of values (issue 14): readings triage could not judge (implausible or
    # unavailable), as state field names ("soh", "temperature_max"); reasons say which check
    unjudged: tuple[str, ...] | None = None


@dataclass(frozen=True, kw_only=True)
class Evidence:
    """A stored artefact referenced by hash (the JPEG label photo)."""

    kind: str  # "label_photo"
    sha256: str = pattern(r"[0-9a-f]{64}")
    media_type: str = "image/jpeg"
    size: int = bounded(0, None)


@dataclass(frozen=True, kw_only=True)
class Clock:
    """Event time and how much to trust it."""

    utc: str = pattern(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z")
    state: ClockState = "unknown"


@dataclass(frozen=True, kw_only=True)
class IdentificationEvent:
    """The signed record of one identification (schema v1)."""

    v: int = bounded(1, 1, default=SCHEMA_VERSION)
    event_id: str = pattern(UUID7_PATTERN)
    site: str = pattern(r"[A-Za-z0-9_-]{1,64}")
    station: str = pattern(r"[A-Za-z0-9_-]{1,64}")
    kid: str = pattern(r"[0-9a-f]{32}")
    boot_epoch: int = bounded(0, 2**63 - 1)
    seq: int = bounded(0, 2**63 - 1)
    clock: Clock
    trigger: str = "request"  # "dock_switch", "bms_traffic", "weight", "request"
    pack: PackIdentity
    readings: Readings
    checks: tuple[Check, ...] = ()
    triage: Triage
    observations: tuple[str, ...] = ()  # technician: "swelling", "leak", "odour", "damage", ...
    evidence: tuple[Evidence, ...] = length(0, 8, default=())
    # --- the fields a recycler reports (issue 14) ---------------------------------------------
    intake: IntakeRecord | None = None
    # --- corrections at the bench (issue 16): this event corrects an earlier signed one, which
    # stays as it was; the corrected event repeats every field with the corrections applied
    corrects: str | None = pattern(UUID7_PATTERN, default=None)  # event_id of the original
    corrections: tuple[Correction, ...] | None = None


# --- corrections (issue 16) -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Correction:
    """One field a technician corrected in the event named by ``corrects``, and why."""

    name: str  # what was corrected: "pack.pack_code", "pack.battery_type", "triage.disposition", "observations"
    value: str = length(0, 200)  # the corrected value as text ("" = cleared)
    previous: str | None = length(0, 200, default=None)  # the original's value as text
    reason: str = length(1, 500)
    by: str | None = length(1, 64, default=None)  # technician id


# --- the recycler's intake record (issue 14) -------------------------------------------------

UnNumber = Literal["UN3480", "UN3481"]
SpecialProvision = Literal["SP376", "SP377"]
EuBatteryStatus = Literal["waste", "for_repurposing", "for_reuse"]
EuBatteryCategory = Literal["ev", "industrial", "stationary", "lmt"]
# what the BMS's SOH value means: UN GTR 22 state of certified energy, remaining capacity as a
# share of rated capacity, or a definition the profile does not state
SohDefinition = Literal["soce", "capacity", "unspecified"]
USCC_PATTERN = r"[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}"


@dataclass(frozen=True, kw_only=True)
class Consignor:
    """The enterprise delivering the pack, as entered or scanned at the bench."""

    name: str | None = length(1, 200, default=None)
    uscc: str | None = pattern(USCC_PATTERN, default=None)  # GB 32100 check character verified


@dataclass(frozen=True, kw_only=True)
class Observation:
    """One observation and who made it."""

    what: str  # "swelling", "leak", ... (the same token as in ``observations``)
    by: str | None = None  # technician id; absent when none was given


@dataclass(frozen=True, kw_only=True)
class IntakeRecord:
    """What a recycler reports about the pack's intake; every field optional, never guessed."""

    un_number: UnNumber | None = None  # lithium-ion only: UN3480 loose, UN3481 in equipment
    special_provision: SpecialProvision | None = None  # SP376 damaged/defective, SP377 disposal
    consignor: Consignor | None = None
    enterprise_id: str | None = length(1, 64, default=None)  # the site's enterprise id
    eu_status: EuBatteryStatus | None = None  # Regulation (EU) 2023/1542 battery status
    eu_category: EuBatteryCategory | None = None  # Regulation (EU) 2023/1542 category
    soh_definition: SohDefinition | None = None  # of readings.bms.state.soh
    technician: str | None = length(1, 64, default=None)
    observations: tuple[Observation, ...] | None = None
