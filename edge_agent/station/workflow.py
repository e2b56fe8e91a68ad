"""One identification: gather sources concurrently, reconcile, triage, build, sign, store.

Each source is an async callable taking a timeout. A source that fails, raises or times out
yields a reading with the reason; it never aborts the identification. The event is committed
to the outbox (``EventSink.store``) before anything is published.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from collections.abc import Sequence as Seq
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from edge_agent.bms.profile import PackProfile
from edge_agent.errors import StationError
from edge_agent.event_codec import uuid7
from edge_agent.model import (
    BmsReading,
    Clock,
    Consignor,
    IdentificationEvent,
    LabelReading,
    Observation,
    Readings,
    SensorReading,
    WeightReading,
)
from edge_agent.signing.events import sign_event
from edge_agent.signing.signer import Signer
from edge_agent.station.assemble import EventContext, build_event, utc_text
from edge_agent.station.boot import BootCounter, clock_state
from edge_agent.station.corrections import CorrectionRequest, corrected_event
from edge_agent.station.intake import intake_record
from edge_agent.station.reconcile import reconcile
from edge_agent.station.settings import SourcePolicy, StationSettings
from edge_agent.station.triage import KNOWN_OBSERVATIONS, triage

log = logging.getLogger(__name__)
T = TypeVar("T")

LabelCapture = tuple[LabelReading, bytes | None]
BmsFn = Callable[[float], Awaitable[BmsReading]]
LabelFn = Callable[[float], Awaitable[LabelCapture]]
WeightFn = Callable[[float], Awaitable[WeightReading]]
SensorFn = Callable[[float], Awaitable[SensorReading]]


@dataclass(frozen=True, kw_only=True)
class Progress:
    """One step of an identification, for live views (the kiosk page, logs).

    ``step``: "started", "source" (one source finished: ``source`` and its ``reading``),
    "stored" (the signed event is in the outbox: ``result``) or "failed" (``detail``)."""

    step: str
    trigger: str = ""
    source: str = ""
    reading: object = None
    result: IdentificationResult | None = None
    detail: str = ""


# called in the event loop; a listener must not block (put it on a queue)
ProgressFn = Callable[[Progress], None]


class EventSink(Protocol):
    """Durable store for signed events (the outbox)."""

    async def store(
        self, event: IdentificationEvent, message: bytes, photo_jpeg: bytes | None
    ) -> None:
        """Commit the event (and its evidence) durably; raise OutboxFullError when refused."""
        ...


@dataclass(frozen=True, kw_only=True)
class StationSources:
    """The async readers of one bench; None means the bench has no such source."""

    bms: BmsFn | None = None
    label: LabelFn | None = None
    weight: WeightFn | None = None
    sensors: SensorFn | None = None


@dataclass(frozen=True, kw_only=True)
class IdentificationResult:
    """What one identification produced."""

    event: IdentificationEvent
    message: bytes
    photo_jpeg: bytes | None
    source_ms: dict[str, float] = field(default_factory=dict)
    sources_done_at: float = 0.0  # time.perf_counter() when the last source finished
    stored_at: float = 0.0  # time.perf_counter() when the outbox commit returned


class IdentificationWorkflow:
    """Runs identifications for one bench station: sources, reconcile, triage, sign, store."""

    def __init__(
        self,
        *,
        settings: StationSettings,
        sources: StationSources,
        signer: Signer,
        sink: EventSink,
        boot_epoch: int | BootCounter,
        profile: PackProfile | None = None,
        progress: ProgressFn | None = None,
    ) -> None:
        self._progress = progress
        self._settings = settings
        self._sources = sources
        self._signer = signer
        self._sink = sink
        self._counter = (
            boot_epoch if isinstance(boot_epoch, BootCounter) else BootCounter(boot_epoch)
        )
        self._profile = profile
        self._lock = asyncio.Lock()

    def use_signer(self, signer: Signer) -> None:
        """Sign the next events with ``signer`` (a key rotation; any thread)."""
        self._signer = signer

    async def identify(
        self,
        *,
        trigger: str = "request",
        observations: tuple[str, ...] = (),
        profile: PackProfile | None = None,
        consignor: Consignor | None = None,
        technician: str | None = None,
    ) -> IdentificationResult:
        """One identification now; raises OutboxFullError when the outbox refuses it."""
        unknown = [o for o in observations if o.strip().lower() not in KNOWN_OBSERVATIONS]
        if unknown:
            raise StationError(
                f"unknown observation(s) {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_OBSERVATIONS))}"
            )
        async with self._lock:  # one pack on the bench at a time
            self._emit(Progress(step="started", trigger=trigger))
            try:
                result = await self._identify(
                    trigger,
                    tuple(o.strip().lower() for o in observations),
                    profile or self._profile,
                    consignor=consignor,
                    technician=technician,
                )
            except Exception as exc:
                self._emit(Progress(step="failed", trigger=trigger, detail=str(exc)))
                raise
            self._emit(Progress(step="stored", trigger=trigger, result=result))
            return result

    def _emit(self, progress: Progress) -> None:
        if self._progress is None:
            return
        try:
            self._progress(progress)
        except Exception:  # a broken view must not break an identification
            log.exception("progress listener failed")

    async def correct(
        self,
        original: IdentificationEvent,
        requests: Seq[CorrectionRequest],
        *,
        technician: str | None = None,
        photo_jpeg: bytes | None = None,
    ) -> IdentificationResult:
        """Sign and store a new event correcting ``original`` (which stays as it was)."""
        async with self._lock:
            corrected, _ = corrected_event(
                original, requests, settings=self._settings.triage, technician=technician
            )
            now = datetime.now(UTC)
            signer = self._signer  # one key per event, whatever a rotation does meanwhile
            epoch, seq = self._counter.next()
            event = replace(
                corrected,
                event_id=uuid7(int(now.timestamp() * 1000)),
                kid=signer.kid.hex(),
                boot_epoch=epoch,
                seq=seq,
                clock=Clock(utc=utc_text(now), state=clock_state()),
                trigger="correction",
            )
            message = sign_event(event, signer)
            await self._sink.store(event, message, None)
            log.info(
                "corrected event",
                extra={"event_id": event.event_id, "corrects": original.event_id},
            )
            result = IdentificationResult(
                event=event, message=message, photo_jpeg=photo_jpeg, stored_at=time.perf_counter()
            )
            self._emit(Progress(step="stored", trigger="correction", result=result))
            return result

    async def _identify(
        self,
        trigger: str,
        observations: tuple[str, ...],
        profile: PackProfile | None,
        *,
        consignor: Consignor | None = None,
        technician: str | None = None,
    ) -> IdentificationResult:
        s = self._settings
        src = self._sources
        timings: dict[str, float] = {}
        bms_t = _timed("bms", timings, _with_policy(src.bms, s.bms, _bms_failed, _bms_absent))
        label_t = _timed(
            "label", timings, _with_policy(src.label, s.label, _label_failed, _label_absent)
        )
        weight_t = _timed(
            "weight", timings, _with_policy(src.weight, s.weight, _weight_failed, _weight_absent)
        )
        sensors_t = _timed("sensors", timings, _sensors(src.sensors, s.weight.timeout_s))
        e = self._emit
        bms, (label, photo), weight, sensors = await asyncio.gather(
            _reported("bms", e, bms_t),
            _reported("label", e, label_t),
            _reported("weight", e, weight_t),
            _reported("sensors", e, sensors_t),
        )
        sources_done = time.perf_counter()

        readings = Readings(bms=bms, label=label, weight=weight, sensors=sensors)
        rec = reconcile(readings, profile=profile, manufacturers=s.manufacturers)
        verdict = triage(readings, rec.checks, observations, s.triage)
        by = technician or s.intake.technician
        intake = intake_record(
            readings=readings,
            pack=rec.pack,
            triage=verdict,
            settings=s,
            profile=profile,
            consignor=consignor,
            technician=technician,
            observations=[Observation(what=o, by=by) for o in observations],
        )
        signer = self._signer  # one key per event, whatever a rotation does meanwhile
        epoch, seq = self._counter.next()
        ctx = EventContext(
            site=s.site,
            station=s.station,
            kid_hex=signer.kid.hex(),
            boot_epoch=epoch,
            seq=seq,
            clock_state=clock_state(),
        )
        event = build_event(
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
        message = sign_event(event, signer)
        await self._sink.store(event, message, photo)
        stored = time.perf_counter()
        log.info(
            "identified pack",
            extra={
                "event_id": event.event_id,
                "pack_code": event.pack.pack_code or "",
                "transport_class": verdict.transport_class,
                "disposition": verdict.disposition,
                "seq": ctx.seq,
            },
        )
        return IdentificationResult(
            event=event,
            message=message,
            photo_jpeg=photo,
            source_ms=timings,
            sources_done_at=sources_done,
            stored_at=stored,
        )


async def _timed(name: str, timings: dict[str, float], coro: Awaitable[T]) -> T:
    started = time.perf_counter()
    try:
        return await coro
    finally:
        timings[name] = round((time.perf_counter() - started) * 1000.0, 3)


async def _reported(name: str, emit: Callable[[Progress], None], coro: Awaitable[T]) -> T:
    result = await coro
    reading = result[0] if isinstance(result, tuple) else result
    emit(Progress(step="source", source=name, reading=reading))
    return result


async def _with_policy(
    fn: Callable[[float], Awaitable[T]] | None,
    policy: SourcePolicy,
    failed: Callable[[str], T],
    absent: Callable[[], T],
) -> T:
    """Call a source with its timeout, retrying failed readings within the policy."""
    if fn is None:
        return absent()
    deadline = time.monotonic() + policy.timeout_s
    result: T = failed("not attempted")
    for attempt in range(policy.retries + 1):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            result = await asyncio.wait_for(fn(remaining), remaining)
        except TimeoutError:
            result = failed(f"no result within {policy.timeout_s:g} s")
            break
        except Exception as exc:  # a broken source must not abort the identification
            log.exception("source failed (attempt %d)", attempt + 1)
            result = failed(f"{type(exc).__name__}: {exc}")
            continue
        if _status(result) != "failed":
            return result
    return result


def _status(result: object) -> str:
    reading = result[0] if isinstance(result, tuple) else result
    return str(getattr(reading, "status", "ok"))


async def _sensors(fn: SensorFn | None, timeout: float) -> SensorReading | None:
    if fn is None:
        return None
    try:
        return await asyncio.wait_for(fn(timeout), timeout)
    except Exception as exc:  # sensors are advisory
        return SensorReading(status="failed", problems=(f"{type(exc).__name__}: {exc}",))


def _bms_failed(reason: str) -> BmsReading:
    return BmsReading(status="failed", problems=(reason,))


def _bms_absent() -> BmsReading:
    return BmsReading(status="absent", problems=("no BMS source configured",))


def _label_failed(reason: str) -> LabelCapture:
    return LabelReading(status="failed", problems=(reason,)), None


def _label_absent() -> LabelCapture:
    return LabelReading(status="absent", problems=("no camera configured",)), None


def _weight_failed(reason: str) -> WeightReading:
    return WeightReading(status="failed", problems=(reason,))


def _weight_absent() -> WeightReading:
    return WeightReading(status="absent", problems=("no scale configured",))
