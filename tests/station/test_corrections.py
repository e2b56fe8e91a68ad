"""Corrections at the bench: a new event repeating the signed one with fields changed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from edge_agent.errors import CodeError, StationError
from edge_agent.event_codec import event_from_plain, event_to_plain
from edge_agent.signing.events import verify_event
from edge_agent.signing.keys import load_signer
from edge_agent.station.corrections import CorrectionRequest, corrected_event
from edge_agent.station.settings import StationSettings, TriageSettings
from edge_agent.station.workflow import IdentificationWorkflow, Progress
from tests.support.signing import example_event
from tests.support.station import SITE, STATION, instant_sources, station_files

KID = "00112233445566778899aabbccddeeff"


def _req(name: str, value: str, reason: str = "checked at the bench") -> CorrectionRequest:
    return CorrectionRequest(name=name, value=value, reason=reason)


def test_observation_added_later_re_runs_the_triage() -> None:
    original = example_event(KID)
    assert original.triage.transport_class == "normal"
    event, corrections = corrected_event(
        original, [_req("observations", "smoke")], settings=TriageSettings(), technician="T-1"
    )
    assert event.corrects == original.event_id
    assert event.triage.transport_class == "critical" and event.triage.packing_instruction == "P911"
    assert event.observations == ("smoke",)
    assert corrections[0].previous == "" and corrections[0].value == "smoke"
    assert corrections[0].by == "T-1"
    if event.intake is not None:
        assert event.intake.observations is not None
        assert [(o.what, o.by) for o in event.intake.observations] == [("smoke", "T-1")]
    # the corrected event is a valid v1 event (round trip through the schema's plain form)
    assert event_from_plain(event_to_plain(event)) == event


def test_pack_code_and_disposition_corrections() -> None:
    original = example_event(KID)
    code = "001PBA1000001NABB7654321"
    event, corrections = corrected_event(
        original,
        [_req("pack.pack_code", code.lower()), _req("triage.disposition", "expert_review")],
        settings=TriageSettings(),
        technician=None,
    )
    assert event.pack.pack_code == code and event.pack.source["pack_code"] == "technician"
    assert event.triage.disposition == "expert_review"
    assert event.triage.reasons[-1] == "disposition set by the technician: checked at the bench"
    assert [c.name for c in corrections] == ["pack.pack_code", "triage.disposition"]
    assert corrections[0].previous == original.pack.pack_code


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        (_req("pack.pack_code", "NOT-A-CODE"), CodeError),
        (_req("pack.kid", "x"), StationError),
        (_req("readings.bms", "x"), StationError),
        (_req("triage.disposition", "landfill"), StationError),
        (_req("observations", "ghosts"), StationError),
        (_req("pack.battery_type", "ncm", reason=" "), StationError),
        (_req("pack.battery_type", "x" * 201), StationError),
    ],
)
def test_bad_corrections_are_refused(request_: CorrectionRequest, error: type[Exception]) -> None:
    with pytest.raises(error):
        corrected_event(example_event(KID), [request_], settings=TriageSettings(), technician=None)


def test_a_correction_that_changes_nothing_is_refused() -> None:
    original = example_event(KID)
    with pytest.raises(StationError, match="changes nothing"):
        corrected_event(
            original,
            [_req("pack.battery_type", original.pack.battery_type or "")],
            settings=TriageSettings(),
            technician=None,
        )


class MemorySink:
    def __init__(self) -> None:
        self.stored: list[bytes] = []

    async def store(self, event: object, message: bytes, photo_jpeg: bytes | None) -> None:
        self.stored.append(message)


def test_workflow_signs_a_new_event_and_reports_progress(tmp_path: Path) -> None:
    files = station_files(tmp_path)
    signer = load_signer(files.key_dir)
    sink = MemorySink()
    steps: list[Progress] = []
    workflow = IdentificationWorkflow(
        settings=StationSettings(site=SITE, station=STATION, data_dir=files.data_dir),
        sources=instant_sources(),
        signer=signer,
        sink=sink,
        boot_epoch=3,
        progress=steps.append,
    )

    async def main() -> None:
        first = await workflow.identify()
        second = await workflow.correct(
            first.event, [_req("pack.battery_type", "ncm")], technician="T-2"
        )
        assert second.event.event_id != first.event.event_id
        assert second.event.seq == first.event.seq + 1
        assert second.event.trigger == "correction"
        verified = verify_event(second.message, files.trust).event
        assert verified.corrects == first.event.event_id
        assert verified.pack.battery_type == "ncm"
        # the original's signed bytes are untouched and still verify as they were
        assert verify_event(first.message, files.trust).event == first.event
        assert sink.stored == [first.message, second.message]

    asyncio.run(main())
    kinds = [(p.step, p.source) for p in steps]
    assert kinds[0] == ("started", "")
    assert {s for step, s in kinds if step == "source"} == {"bms", "label", "weight", "sensors"}
    assert [k for k in kinds if k[0] == "stored"] == [("stored", ""), ("stored", "")]


def test_a_broken_progress_listener_does_not_break_an_identification(tmp_path: Path) -> None:
    files = station_files(tmp_path)

    def broken(progress: Progress) -> None:
        raise RuntimeError("view crashed")

    workflow = IdentificationWorkflow(
        settings=StationSettings(site=SITE, station=STATION, data_dir=files.data_dir),
        sources=instant_sources(),
        signer=load_signer(files.key_dir),
        sink=MemorySink(),
        boot_epoch=1,
        progress=broken,
    )
    result = asyncio.run(workflow.identify())
    assert result.event.triage.transport_class == "normal"
