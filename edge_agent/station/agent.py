"""A running bench station built from the configuration: sources, signer, outbox, uplink.

``StationAgent`` owns every resource (buses, camera, node links, outbox, MQTT publisher) and
releases them in reverse order. ``edge-agent run``, ``identify`` and ``demo`` all use it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections import OrderedDict
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from edge_agent.bms.profile import PackProfile, load_profile
from edge_agent.errors import KeyFileError, StationError
from edge_agent.model import (
    BmsReading,
    Consignor,
    IdentificationEvent,
    SensorReading,
    WeightReading,
)
from edge_agent.signing.signer import Signer
from edge_agent.station.boot import BootCounter, next_boot_epoch
from edge_agent.station.corrections import CorrectionRequest
from edge_agent.station.metrics import StationMetrics
from edge_agent.station.recovery import ReplayRecovery
from edge_agent.station.rotation import KeyRotator, RotationStarted
from edge_agent.station.settings import StationConfig
from edge_agent.station.workflow import (
    IdentificationResult,
    IdentificationWorkflow,
    LabelCapture,
    Progress,
    ProgressFn,
    StationSources,
)
from edge_agent.tokens.configured import open_keyring
from edge_agent.uplink.outbox import Outbox, OutboxMessage
from edge_agent.uplink.publisher import OutboxPublisher
from edge_agent.uplink.station_uplink import station_uplink
from edge_agent.uplink.topics import StationTopics

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Published:
    """Delivery outcome of one identification event."""

    event_id: str
    delivered: bool
    latency_s: float | None


class OutboxSink:
    """Commits the signed event and its evidence photo to the outbox in one transaction."""

    def __init__(self, publisher: OutboxPublisher, topics: StationTopics) -> None:
        self._publisher = publisher
        self._topics = topics
        # event_id -> the publisher's delivery future (bounded: waiters only ask for recent ones)
        self._delivery: OrderedDict[str, concurrent.futures.Future[float]] = OrderedDict()

    def delivery(self, event_id: str) -> concurrent.futures.Future[float] | None:
        """The PUBACK future of an event stored through this sink (None when unknown)."""
        return self._delivery.get(event_id)

    async def store(
        self, event: IdentificationEvent, message: bytes, photo_jpeg: bytes | None
    ) -> None:
        """Durable before return; the publisher sends it (and re-sends after restarts)."""
        companions = []
        if photo_jpeg:
            companions.append(
                OutboxMessage(self._topics.evidence(event.event_id), photo_jpeg, event.event_id)
            )
        fut = await self._publisher.asubmit(
            self._topics.event, message, event.event_id, companions=companions
        )
        self._delivery[event.event_id] = fut
        while len(self._delivery) > 10_000:
            self._delivery.popitem(last=False)


class BenchInput:
    """What the technician entered at the bench for the next docking (observations, id)."""

    def __init__(self, technician: str | None = None) -> None:
        self.observations: list[str] = []
        self.technician = technician

    def toggle(self, observation: str) -> None:
        """Add or remove one observation for the next identification."""
        if observation in self.observations:
            self.observations.remove(observation)
        else:
            self.observations.append(observation)

    def take(self) -> tuple[str, ...]:
        """The observations for the identification starting now (then cleared)."""
        taken = tuple(self.observations)
        self.observations.clear()
        return taken


class StationAgent:
    """Everything one bench needs, opened from config (use as an async context manager)."""

    def __init__(self, config: StationConfig, *, sources: StationSources | None = None) -> None:
        self.config = config
        self._given_sources = sources
        self.registry = CollectorRegistry()
        self.metrics = StationMetrics(registry=self.registry)
        self._stack = AsyncExitStack()
        self.profile: PackProfile | None = None
        self.nodes: Any = None
        self.camera: Any = None
        self.topics: StationTopics | None = None
        self.outbox: Outbox | None = None
        self.publisher: OutboxPublisher | None = None
        self.workflow: IdentificationWorkflow | None = None
        self.sink: OutboxSink | None = None
        self.rotator: KeyRotator | None = None
        self._recovery: ReplayRecovery | None = None
        # the identification running now and what it was asked for (requests join it)
        self._running: asyncio.Task[IdentificationResult] | None = None
        self._running_asked: tuple[frozenset[str], Consignor | None, str | None] | None = None
        self._listeners: list[ProgressFn] = []
        self.bench = BenchInput(config.station.intake.technician)

    def add_progress_listener(self, listener: ProgressFn) -> None:
        """Call ``listener`` (in the event loop, must not block) at every identification step."""
        self._listeners.append(listener)

    def remove_progress_listener(self, listener: ProgressFn) -> None:
        """Stop calling ``listener``."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _progress(self, progress: Progress) -> None:
        for listener in list(self._listeners):
            listener(progress)

    async def __aenter__(self) -> StationAgent:
        try:
            await self._open()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def _open(self) -> None:
        cfg = self.config
        try:
            # a token ring when pkcs11 is set (no key file is read, ever), else the key files;
            # opening finishes a key switch a crash interrupted, before any key is read
            keyring = open_keyring(cfg.signing)
            self._stack.callback(keyring.close)
            signer = keyring.active()
        except KeyFileError as exc:
            raise StationError(
                f"{exc}; create the station key with: edge-agent keys init --dir {cfg.signing.key_dir}"
            ) from None
        # a copy beside the key survives the loss of the data folder; the larger one wins
        boot_epoch = next_boot_epoch(cfg.station.data_dir, cfg.signing.key_dir)
        counter = BootCounter(
            boot_epoch, data_dir=cfg.station.data_dir, key_dir=cfg.signing.key_dir
        )
        uplink = station_uplink(
            site=cfg.station.site,
            station=cfg.station.station,
            data_dir=cfg.station.data_dir,
            settings=cfg.uplink,
            registry=self.registry,
        )
        self.topics, self.outbox, self.publisher = uplink.topics, uplink.outbox, uplink.publisher
        self._stack.callback(self.outbox.close)
        self.rotator = KeyRotator(
            keys=keyring,
            signer=signer,
            topics=uplink.topics,
            enqueue=self.publisher.enqueue,
            receipts=uplink.receipts is not None,
            on_switch=self._use_signer,
            overlap_s=cfg.signing.rotation_overlap_s,
        )
        if uplink.receipts is not None:
            self._recovery = ReplayRecovery(outbox=self.outbox, signer=signer, counter=counter)
            uplink.receipts.on_replay = self._recovery
            if self.rotator is not None:
                uplink.receipts.before_apply = self.rotator.on_receipt
        if self.outbox.corruption is not None:
            log.error("%s", self.outbox.corruption)
        self.publisher.start()
        self._stack.callback(self.publisher.stop)
        sources = self._given_sources or await self._open_sources()
        self.sink = OutboxSink(self.publisher, uplink.topics)
        self.workflow = IdentificationWorkflow(
            settings=cfg.station,
            sources=sources,
            signer=signer,
            sink=self.sink,
            boot_epoch=counter,
            profile=self.profile,
            progress=self._progress,
        )
        self.rotator.resume()  # a statement still waiting for the gateway is queued again
        retired = keyring.retire()  # private keys of rotated-away keys past their overlap
        if retired:
            log.info("retired keys %s (overlap over)", ", ".join(retired))
        self.metrics.serve(cfg.metrics.host, cfg.metrics.port)
        log.info(
            "station ready",
            extra={
                "site": cfg.station.site,
                "station": cfg.station.station,
                "boot_epoch": boot_epoch,
            },
        )

    def _use_signer(self, signer: Signer) -> None:
        # a key rotation was accepted (MQTT thread, or the caller of rotate without receipts)
        if self.workflow is not None:
            self.workflow.use_signer(signer)
        if self._recovery is not None:
            self._recovery.signer = signer

    async def rotate_key(
        self, *, alg: str | None = None, overlap_s: int | None = None
    ) -> RotationStarted:
        """Start a key rotation (``keys rotate``): next key, statement queued, switch on receipt."""
        if self.rotator is None or self.workflow is None:
            raise StationError("station agent is not open")
        chosen = alg or self.config.signing.alg
        if chosen not in ("ed25519", "p256"):
            raise StationError(f"unknown key algorithm {chosen!r} (ed25519 or p256)")
        rotator = self.rotator
        return await asyncio.to_thread(
            lambda: rotator.rotate(alg=chosen, overlap_s=overlap_s)  # type: ignore[arg-type]
        )

    async def _open_sources(self) -> StationSources:
        cfg = self.config
        bms_fn = None
        if cfg.bms.profile:
            self.profile = load_profile(cfg.bms.profile, cfg.bms.profile_dirs)
            bms_fn = self._bms_reader(self.profile)
        label_fn = None
        if cfg.label.source:
            from edge_agent.vision.camera import camera_from_settings

            self.camera = camera_from_settings(cfg.label)
            self._stack.callback(self.camera.close)
            label_fn = self._read_label
        weight_fn = sensors_fn = None
        if cfg.nodes.ports:
            from edge_agent.nodes.registry import NodeRegistry

            self.nodes = await NodeRegistry.open(
                cfg.nodes.ports,
                baudrate=cfg.nodes.baudrate,
                hello_timeout_s=cfg.nodes.hello_timeout_s,
            )
            self._stack.push_async_callback(self.nodes.close)
            weight_fn, sensors_fn = self._read_weight, self._read_sensors
        return StationSources(bms=bms_fn, label=label_fn, weight=weight_fn, sensors=sensors_fn)

    def _bms_reader(self, profile: PackProfile) -> Any:
        from edge_agent.bms import read_bms

        settings = self.config.bms

        async def read_pack_bms(timeout: float) -> BmsReading:
            return await read_bms(profile, settings, timeout)

        return read_pack_bms

    async def _read_label(self, timeout: float) -> LabelCapture:
        from edge_agent.vision.reader import read_label

        result = await read_label(self.camera, self.config.label, timeout)
        return result.reading, result.photo_jpeg

    async def _read_weight(self, timeout: float) -> WeightReading:
        from edge_agent.nodes.readings import read_weight

        return await read_weight(self.nodes, timeout)

    async def _read_sensors(self, timeout: float) -> SensorReading:
        from edge_agent.nodes.readings import read_sensors

        return await read_sensors(self.nodes, timeout)

    @property
    def identifying(self) -> bool:
        """True while an identification runs."""
        return self._running is not None and not self._running.done()

    async def identify(
        self,
        *,
        trigger: str = "request",
        observations: tuple[str, ...] = (),
        profile: PackProfile | None = None,
        consignor: Consignor | None = None,
        technician: str | None = None,
        join: bool = True,
    ) -> IdentificationResult:
        """One identification; the event is in the outbox when this returns.

        With ``join`` (the default), a call while an identification runs returns that one's
        result (the same event) unless it brings something the running one lacks: new
        observations, a consignor or a technician; those get an identification of their own
        after the running one, so nothing the technician entered is dropped.
        """
        if self.workflow is None:
            raise StationError("station agent is not open")
        asked = (frozenset(o.strip().lower() for o in observations), consignor, technician)
        running, running_asked = self._running, self._running_asked
        if join and running is not None and not running.done() and running_asked is not None:
            adds = bool(asked[0] - running_asked[0])
            adds |= consignor is not None and consignor != running_asked[1]
            adds |= technician is not None and technician != running_asked[2]
            if not adds:
                return await asyncio.shield(running)
        task = asyncio.create_task(
            self._identify_once(trigger, observations, profile, consignor, technician)
        )
        self._running, self._running_asked = task, asked
        # shielded: a caller that gives up must not cancel the identification others joined
        return await asyncio.shield(task)

    async def _identify_once(
        self,
        trigger: str,
        observations: tuple[str, ...],
        profile: PackProfile | None,
        consignor: Consignor | None,
        technician: str | None,
    ) -> IdentificationResult:
        assert self.workflow is not None
        result = await self.workflow.identify(
            trigger=trigger,
            observations=observations,
            profile=profile,
            consignor=consignor,
            technician=technician,
        )
        self.metrics.record(result)
        return result

    async def correct(
        self,
        original: IdentificationEvent,
        requests: list[CorrectionRequest],
        *,
        technician: str | None = None,
        photo_jpeg: bytes | None = None,
    ) -> IdentificationResult:
        """A new signed event correcting ``original``; the original is never changed."""
        if self.workflow is None:
            raise StationError("station agent is not open")
        return await self.workflow.correct(
            original, requests, technician=technician, photo_jpeg=photo_jpeg
        )

    async def wait_published(self, event_id: str, timeout: float) -> Published:
        """Wait for the broker's PUBACK of the event (and its evidence)."""
        assert self.publisher is not None and self.sink is not None
        fut = self.sink.delivery(event_id)
        try:
            if fut is None:
                latency = await self.publisher.wait_delivered(event_id, timeout)
            else:
                # shielded: a timed-out wait must not cancel the delivery future itself
                # (asyncio.wrap_future propagates cancellation), or every later wait for
                # the same event would raise CancelledError
                latency = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(fut)), timeout)
        except TimeoutError:
            return Published(event_id=event_id, delivered=False, latency_s=None)
        return Published(event_id=event_id, delivered=True, latency_s=latency)

    async def dock_triggers(self) -> Any:
        """Async iterator of dock signals from the nodes (dock switch, weight rise and fall)."""
        if self.nodes is None:
            return
        from edge_agent.nodes.readings import dock_events
        from edge_agent.station.docking import DockSignal

        async for trigger in dock_events(
            self.nodes, rise_kg=self.config.station.dock_weight_threshold_kg
        ):
            yield DockSignal(kind=trigger.kind, docked=trigger.docked)
        await asyncio.sleep(0)
