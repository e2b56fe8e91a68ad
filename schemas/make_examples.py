"""Generate schemas/examples/*.json from the code: simulated packs through the real path.

    python schemas/make_examples.py            # rewrite the examples
    python schemas/make_examples.py --check    # exit 1 when a file differs from what the code makes

Each example starts from a simulator's data (the SunSpec battery's register map, the GB/T 27930
BMS's encoded BRM/BCP/BCS/BSM/BMV/BMT messages, a node's weight and sensor lines, a label's code
text) and goes through the same decoders, reading builder, code parser, reconciliation, triage,
intake record and event assembly as a station. Only what a bench makes up at run time is fixed:
the time, the event id, the station key id, the sequence and the photo's bytes, so the files are
reproducible. tests/signing/test_examples_generated.py fails when they drift from the code.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from edge_agent.bms.can import gbt27930 as gbt  # noqa: E402
from edge_agent.bms.can import gbt27930_encode as enc  # noqa: E402
from edge_agent.bms.can.gbt27930_session import GbtCollector  # noqa: E402
from edge_agent.bms.can.j1939_tp import TpReceiver  # noqa: E402
from edge_agent.bms.can.reading import ReadingBuilder  # noqa: E402
from edge_agent.bms.modbus.sunspec_map import to_reading  # noqa: E402
from edge_agent.bms.modbus.sunspec_reader import scan  # noqa: E402
from edge_agent.bms.profile import PackProfile, load_profile  # noqa: E402
from edge_agent.codes.identify import parse_identifier  # noqa: E402
from edge_agent.errors import BusTimeoutError, ModbusError  # noqa: E402
from edge_agent.event_codec import event_to_plain  # noqa: E402
from edge_agent.model import (  # noqa: E402
    BmsReading,
    Consignor,
    IdentificationEvent,
    LabelCode,
    LabelReading,
    Observation,
    Readings,
    SensorReading,
    WeightReading,
)
from edge_agent.nodes.messages import Envelope, SensorMessage, WeightMessage  # noqa: E402
from edge_agent.nodes.protocol import NodeMessage  # noqa: E402
from edge_agent.nodes.readings import sensor_reading, weight_reading  # noqa: E402
from edge_agent.sim.can_gbt import DEFAULT_BRM, default_bcp  # noqa: E402
from edge_agent.sim.modbus_sunspec import SunSpecBattery, sunspec_registers  # noqa: E402
from edge_agent.station.assemble import EventContext, build_event  # noqa: E402
from edge_agent.station.intake import intake_record  # noqa: E402
from edge_agent.station.reconcile import reconcile  # noqa: E402
from edge_agent.station.settings import IntakeSettings, StationSettings  # noqa: E402
from edge_agent.station.triage import triage  # noqa: E402

EXAMPLES = ROOT / "schemas" / "examples"
KID = "5b1e3f0c9a7d24e6b8c1f2a3d4e5f607"
SETTINGS = StationSettings(
    site="recy-suzhou-01",
    station="bench-03",
    enterprise_id="91320594MA1R00000Q",
    intake=IntakeSettings(
        consignor_name="Suzhou Example Dismantling Co.",
        consignor_uscc="91320500MA1XY00006",
        technician="tech-17",
    ),
    # the site's table of GB/T 34014 manufacturer codes (SunSpec model 1 names the BMS device,
    # not the pack's maker, so the pack's maker name comes from here)
    manufacturers={"001": ("CATL", "Contemporary Amperex"), "03U": ("Example Storage Co",)},
)


class _RegisterImage:
    """A Modbus link over an in-memory register map (the SunSpec simulator's words)."""

    def __init__(self, base: int, words: Sequence[int]) -> None:
        self.words = {base + i: w for i, w in enumerate(words)}

    async def read_before(self, address: int, count: int, deadline: float) -> list[int]:
        if any(a not in self.words for a in range(address, address + count)):
            raise ModbusError("illegal data address", address=address, exception_code=2)
        return [self.words[a] for a in range(address, address + count)]


def sunspec_reading(battery: SunSpecBattery, profile: PackProfile) -> BmsReading:
    """The SunSpec battery simulator's register map through the real scan and mapping."""
    link = _RegisterImage(battery.base, sunspec_registers(battery))
    result = asyncio.run(scan(link, timeout=5.0))  # type: ignore[arg-type]
    reading = to_reading(result, profile=profile.name)
    return replace(reading, transport="modbus", duration_ms=412.0)


def gbt_reading(
    profile: PackProfile,
    *,
    brm: gbt.Brm,
    cells: tuple[float, ...],
    temps: tuple[int, ...],
    bsm: gbt.Bsm,
) -> BmsReading:
    """The GB/T 27930 simulator's messages through the real decoders and reading builder."""
    assert profile.gbt27930 is not None
    collector = GbtCollector(
        section=profile.gbt27930,
        receiver=TpReceiver(address=0x56, send=None, clock=lambda: 0.0),
    )
    collector.brm = gbt.decode_brm(enc.encode_brm(brm))
    collector.bcp = gbt.decode_bcp(enc.encode_bcp(default_bcp(len(cells))))
    collector.bsm = gbt.decode_bsm(enc.encode_bsm(bsm))
    collector.bmv = gbt.decode_bmv(enc.encode_bmv(cells))
    collector.bmt = gbt.decode_bmt(enc.encode_bmt(temps))
    builder = ReadingBuilder(transport="can", profile=profile.name, methods=["gbt27930"])
    collector.apply(builder)
    # the profile's plausibility limits, as the CAN source applies them
    reading = builder.build(profile.limits)  # type: ignore[arg-type]
    return replace(reading, duration_ms=1830.0)


def silent_reading(profile: PackProfile) -> BmsReading:
    """A GB/T 27930 BMS that sends nothing, as the CAN source reports it."""
    assert profile.gbt27930 is not None
    builder = ReadingBuilder(transport="can", profile=profile.name)
    builder.failed_methods.append("gbt27930")
    builder.problems.append(
        str(
            BusTimeoutError(
                f"no frame from BMS address {profile.gbt27930.bms_address:#04x} within 5.0 s "
                f"at {profile.bitrate} bit/s (silent bus, pack asleep or wrong bitrate)"
            )
        )
    )
    reading = builder.build(profile.limits)  # type: ignore[arg-type]
    return replace(reading, methods=("gbt27930",), duration_ms=5003.0)


def label_reading(*texts: str, symbology: str, photo: bytes) -> LabelReading:
    """Decoded label text through the real code parser."""
    codes = []
    for text in texts:
        parsed = parse_identifier(text)
        codes.append(
            LabelCode(
                symbology=symbology,
                text=text,
                kind=parsed.kind,
                fields=parsed.fields_as_text(),
                decode_pass="plain",  # noqa: S106 - a decode pass name
            )
        )
    return LabelReading(
        status="ok",
        codes=tuple(codes),
        photo_sha256=hashlib.sha256(photo).hexdigest(),
        frames=2,
        duration_ms=640.0,
    )


def _envelope(t: str, seq: int) -> Envelope:
    return Envelope(v=1, t=t, node="e6614103e7a52b21", boot="00c0ffee", seq=seq, ts=81234)


def weight(kg: float) -> WeightReading:
    """A stable, calibrated scale line through the real conversion."""
    grams = round(kg * 1000 / 50) * 50
    body = WeightMessage(
        raw=grams * 12,
        gross_g=grams,
        net_g=grams,
        e_g=50,
        max_g=1_000_000,
        stable=True,
        calibrated=True,
    )
    return weight_reading(NodeMessage(envelope=_envelope("w", 812), body=body), duration_ms=1210.0)


def sensors(*temps: float, gas: float) -> SensorReading:
    """A sensor node line through the real conversion."""
    body = SensorMessage(temps=temps, gas=gas, gas_alarm=gas >= 0.6, dock=True)
    return sensor_reading(NodeMessage(envelope=_envelope("s", 813), body=body))


def event(
    name: str,
    readings: Readings,
    *,
    profile: PackProfile | None,
    trigger: str,
    seq: int,
    minute: int,
    observations: tuple[str, ...] = (),
    photo: bytes | None = None,
    consignor: Consignor | None = None,
    station: str = SETTINGS.station,
) -> IdentificationEvent:
    """Reconcile, triage and assemble one event as the station does."""
    rec = reconcile(readings, profile=profile, manufacturers=SETTINGS.manufacturers)
    verdict = triage(readings, rec.checks, observations, SETTINGS.triage)
    intake = intake_record(
        readings=readings,
        pack=rec.pack,
        triage=verdict,
        settings=SETTINGS,
        profile=profile,
        consignor=consignor,
        observations=[Observation(what=o, by=SETTINGS.intake.technician) for o in observations],
    )
    ctx = EventContext(
        site=SETTINGS.site,
        station=station,
        kid_hex=KID,
        boot_epoch=17,
        seq=seq,
        clock_state="synced",
        now=datetime(2026, 11, 27, 8, minute, 3, 512000, tzinfo=UTC),
    )
    built = build_event(
        ctx,
        trigger=trigger,
        pack=rec.pack,
        readings=readings,
        checks=rec.checks,
        triage=verdict,
        observations=observations,
        photo_jpeg=photo,
        intake=intake,
    )
    # the id's random bits are fixed by the example's name, so the files are reproducible
    digest = hashlib.sha256(name.encode()).hexdigest()
    fixed = f"{built.event_id[:15]}{digest[:3]}-{'8' + digest[3:6]}-{digest[6:18]}"
    return replace(built, event_id=fixed)


def build_examples() -> dict[str, dict[str, Any]]:
    """Example name -> plain event, all made by the code."""
    out: dict[str, IdentificationEvent] = {}

    # a healthy second-life LFP storage pack: SunSpec 802-805 over Modbus, reuse candidate
    photo = b"\xff\xd8\xff\xe0 healthy-lfp label photo \xff\xd9"
    # the site's profiles state the EU category of the packs they describe
    sunspec = replace(load_profile("sunspec-battery"), battery_category="stationary")
    out["healthy-lfp"] = event(
        "healthy-lfp",
        Readings(
            bms=sunspec_reading(SunSpecBattery(), sunspec),
            label=label_reading("03UPBA2000002NC550000042", symbology="Code128", photo=photo),
            weight=weight(575.0),
            sensors=sensors(22.5, gas=0.05),
        ),
        profile=sunspec,
        trigger="dock_switch",
        seq=4211,
        minute=14,
        photo=photo,
    )

    # a swollen NCM traction pack with an insulation fault whose label carries a module code
    # first; the BMS (GB/T 27930) names another maker
    photo = b"\xff\xd8\xff\xe0 damaged-mismatch label photo \xff\xd9"
    gbt_profile = replace(load_profile("gbt27930-generic"), battery_category="ev")
    cells = tuple(round(3.68 + 0.004 * (i % 7), 3) for i in range(96))
    out["damaged-mismatch"] = event(
        "damaged-mismatch",
        Readings(
            bms=gbt_reading(
                gbt_profile,
                brm=replace(DEFAULT_BRM, manufacturer="BYDC", serial="7731"),
                cells=cells,
                temps=(24, 25, 27, 26),
                bsm=gbt.Bsm(
                    max_voltage_cell=17,
                    max_temperature_c=27,
                    max_temperature_probe=3,
                    min_temperature_c=24,
                    min_temperature_probe=1,
                    faults=("insulation",),
                    charge_allowed=False,
                ),
            ),
            label=label_reading(
                "001MEA3000017NB6F0000042",
                "001PEA3000017NB6F0001234",
                symbology="DataMatrix",
                photo=photo,
            ),
            weight=weight(455.0),
            sensors=sensors(24.0, 31.5, gas=0.21),
        ),
        profile=gbt_profile,
        trigger="dock_switch",
        seq=4212,
        minute=21,
        observations=("swelling",),
        photo=photo,
        consignor=Consignor(name="Wuxi Example Auto Recycling Ltd.", uscc="91320200MA1AB00052"),
    )

    # a pack whose BMS does not answer: the label identifies it, nothing can be diagnosed
    # (identified on another bench of the site: docs/signing.md shows the station binding)
    photo = b"\xff\xd8\xff\xe0 bms-unreadable label photo \xff\xd9"
    out["bms-unreadable"] = event(
        "bms-unreadable",
        Readings(
            bms=silent_reading(gbt_profile),
            label=label_reading("001PBA1000001NA150009876", symbology="QRCode", photo=photo),
            weight=weight(587.0),
        ),
        profile=gbt_profile,
        trigger="weight",
        station="bench-05",
        seq=4213,
        minute=33,
        photo=photo,
    )
    return {name: event_to_plain(ev) for name, ev in out.items()}


def render(plain: dict[str, Any]) -> str:
    """The file text of one example."""
    return json.dumps(plain, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the examples, or with --check report the ones that differ."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    stale = []
    for name, plain in build_examples().items():
        path = EXAMPLES / f"{name}.json"
        text = render(plain)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"out of date: {', '.join(stale)} (run python schemas/make_examples.py)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
