"""The simulated bench behind the end-to-end scenario table (tests/station/test_scenarios_e2e.py).

Every source the station reads is a real part: BMS simulators (GB/T 27930 BMS, UDS ECU and DBC
broadcaster on python-can virtual buses, SunSpec and register-map Modbus servers on loopback
TCP), label photos rendered by ``sim/label_render.py`` read through the folder camera, and a
fixed scale and sensor reading. One ``StationAgent`` (real outbox, real Mosquitto) serves the
whole table from an event loop on its own thread, so the simulators and the agent are started
once per module, not per row.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import cv2

from edge_agent.bms import read_bms
from edge_agent.bms.can.dbc_source import plan_for
from edge_agent.bms.profile import PackProfile, load_profile
from edge_agent.bms.settings import BmsSettings, CanSettings, ModbusSettings
from edge_agent.model import BmsReading, SensorReading, WeightReading
from edge_agent.sim.can_dbc import DbcBroadcasterSimulator, demo_config
from edge_agent.sim.can_gbt import GbtBmsSimulator, GbtSimConfig
from edge_agent.sim.can_runner import SimRunner
from edge_agent.sim.can_uds import UdsEcuSimulator, UdsSimConfig
from edge_agent.sim.label_render import render_label
from edge_agent.sim.modbus_regmap import BYD_VALUES, byd_device
from edge_agent.sim.modbus_server import ModbusDeviceSim
from edge_agent.sim.modbus_sunspec import SunSpecBattery, sunspec_device
from edge_agent.station.workflow import LabelCapture, StationSources
from edge_agent.vision.camera_files import FolderCamera
from edge_agent.vision.reader import read_label
from edge_agent.vision.settings import LabelSettings

T = TypeVar("T")


# --- how a row's BMS is simulated ---------------------------------------------------------


@dataclass(frozen=True)
class SunSpec:
    """A SunSpec 1/802/803/804/805 battery over Modbus TCP (``sunspec-battery`` profile)."""

    battery: SunSpecBattery


@dataclass(frozen=True)
class Gbt:
    """A GB/T 27930 BMS on a virtual CAN bus, read by the charger emulation."""

    config: GbtSimConfig = field(default_factory=GbtSimConfig)


@dataclass(frozen=True)
class Uds:
    """A UDS ECU on a virtual CAN bus (ISO-TP, ReadDataByIdentifier)."""

    config: UdsSimConfig = field(default_factory=UdsSimConfig)
    profile: str = "uds-generic"


@dataclass(frozen=True)
class Dbc:
    """A broadcaster of the ``tesla-model3`` profile's DBC messages with these signal values."""

    values: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Regmap:
    """The BYD Battery-Box register map over Modbus TCP (``byd-batterybox`` profile)."""

    values: dict[str, Any] = field(default_factory=dict)


BmsSim = SunSpec | Gbt | Uds | Dbc | Regmap

TESLA_HEALTHY: dict[str, float] = {
    "BattVoltage132": 355.0,
    "SmoothBattCurrent132": -1.2,
    "SOCave292": 58.0,
    "BMS_nominalFullPackEnergy": 75.0,
    "BattCellTempMax332": 26.0,
    "BattCellTempMin332": 22.0,
    "BMS_isolationResistance": 4500.0,
    "BMS_diLimpRequest": 0.0,
}


def fast_gbt(profile: PackProfile) -> PackProfile:
    """The generic GB/T profile with bench timing: the simulator answers at once, and a dead
    BMS is given up after about a second instead of the 5 s a real charger waits."""
    assert profile.gbt27930 is not None
    return replace(
        profile,
        gbt27930=replace(
            profile.gbt27930, bhm_wait_s=0.3, brm_timeout_s=0.8, bcp_timeout_s=0.8, listen_s=0.3
        ),
    )


class LoopThread:
    """An asyncio loop on a daemon thread: the station lives there for the whole module."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="scenario-loop", daemon=True
        )
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``coro`` on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        """Cancel what is left, stop the loop and join the thread."""

        async def cancel_rest() -> None:
            me = asyncio.current_task()
            rest = [t for t in asyncio.all_tasks() if t is not me]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.run(cancel_rest(), 10.0)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10.0)
        self.loop.close()


@dataclass
class Docked:
    """What is on the bench now."""

    bms: BmsSim | None
    label_dir: Path
    mass_kg: float
    gas_alarm: bool
    channel: str = ""
    modbus_url: str = ""


class ScenarioBench:
    """Per-row simulators and the station's sources reading them."""

    def __init__(self, workdir: Path, loop: LoopThread) -> None:
        self.workdir = workdir
        self.loop = loop
        self.docked: Docked | None = None
        self._count = 0
        self._labels: dict[tuple[tuple[str, ...], str], Path] = {}
        self.gbt_profile = fast_gbt(load_profile("gbt27930-generic"))
        self.profiles = {
            "sunspec": load_profile("sunspec-battery"),
            "gbt": self.gbt_profile,
            "uds-generic": load_profile("uds-generic"),
            "uds-example-vendor": load_profile("uds-example-vendor"),
            "dbc": load_profile("tesla-model3"),
            "regmap": load_profile("byd-batterybox"),
        }

    def profile_of(self, bms: BmsSim | None) -> PackProfile | None:
        """The pack profile the station reads ``bms`` with."""
        match bms:
            case SunSpec():
                return self.profiles["sunspec"]
            case Gbt():
                return self.profiles["gbt"]
            case Uds(profile=name):
                return self.profiles[name]
            case Dbc():
                return self.profiles["dbc"]
            case Regmap():
                return self.profiles["regmap"]
        return None

    def labels(self, codes: tuple[str, ...], symbology: str) -> Path:
        """A folder of rendered label photos, one per code in order, the last code twice
        (the folder camera reads them in name order)."""
        key = (codes, symbology)
        if key not in self._labels:
            folder = self.workdir / "labels" / f"set-{len(self._labels)}"
            folder.mkdir(parents=True)
            frames = [*codes, codes[-1]] if codes else []
            for i, code in enumerate(frames):
                image = render_label(code, symbology, seed=i, degrade=0.15)
                cv2.imwrite(str(folder / f"frame-{i}.png"), image)
            if not frames:  # a pack without a readable label: a blank photo
                image = render_label("000PBA0000000000A0000000", symbology, seed=0, degrade=0.0)
                image[:] = 255
                cv2.imwrite(str(folder / "frame-0.png"), image)
            self._labels[key] = folder
        return self._labels[key]

    @contextlib.contextmanager
    def dock(
        self,
        bms: BmsSim | None,
        *,
        codes: tuple[str, ...],
        symbology: str,
        mass_kg: float,
        gas_alarm: bool,
    ) -> Iterator[Docked]:
        """Put a pack on the bench: start its BMS simulator, show its label, weigh it."""
        self._count += 1
        docked = Docked(
            bms=bms,
            label_dir=self.labels(codes, symbology),
            mass_kg=mass_kg,
            gas_alarm=gas_alarm,
            channel=f"scenario-{id(self)}-{self._count}",
        )
        runner: SimRunner | None = None
        modbus: ModbusDeviceSim | None = None
        match bms:
            case Gbt(config=config):
                runner = GbtBmsSimulator(channel=docked.channel, config=config)
            case Uds(config=config):
                runner = UdsEcuSimulator(channel=docked.channel, config=config)
            case Dbc(values=values):
                plan = plan_for(self.profiles["dbc"])
                sim_config = demo_config(plan, period_s=0.0005, values={**TESLA_HEALTHY, **values})
                runner = DbcBroadcasterSimulator(plan.db, sim_config, channel=docked.channel)
            case SunSpec(battery=battery):
                modbus = sunspec_device(battery)
            case Regmap(values=values):
                modbus = byd_device(values={**BYD_VALUES, **values})
        if runner is not None:
            runner.start()
        try:
            if modbus is not None:
                port = self.loop.run(modbus.start_tcp())
                docked.modbus_url = f"tcp://127.0.0.1:{port}"
            self.docked = docked
            yield docked
        finally:
            self.docked = None
            if runner is not None:
                runner.stop()
            if modbus is not None:
                self.loop.run(modbus.stop())

    # --- the station's sources ------------------------------------------------------------

    def sources(self) -> StationSources:
        """The async readers the station agent is given."""
        return StationSources(
            bms=self.read_bms,
            label=self.read_label,
            weight=self.read_weight,
            sensors=self.read_sensors,
        )

    async def read_bms(self, timeout: float) -> BmsReading:
        """The docked pack's BMS through ``edge_agent.bms.read_bms`` (what the agent does)."""
        docked = self.docked
        assert docked is not None and docked.bms is not None
        profile = self.profile_of(docked.bms)
        assert profile is not None
        if isinstance(docked.bms, SunSpec | Regmap):
            settings = BmsSettings(modbus=ModbusSettings(url=docked.modbus_url, timeout_s=0.5))
        else:
            settings = BmsSettings(
                can=CanSettings(
                    interface="virtual", channel=docked.channel, bitrate=profile.bitrate or 250_000
                )
            )
        return await read_bms(profile, settings, timeout)

    async def read_label(self, timeout: float) -> LabelCapture:
        """Photograph the label with the folder camera and decode it."""
        assert self.docked is not None
        camera = FolderCamera(str(self.docked.label_dir), loop=False)
        try:
            settings = LabelSettings(source=camera.source, backend="files", frames=3)
            result = await read_label(camera, settings, timeout)
        finally:
            camera.close()
        return result.reading, result.photo_jpeg

    async def read_weight(self, timeout: float) -> WeightReading:
        """A fixed, stable weight (the scale is not what these rows are about)."""
        assert self.docked is not None
        return WeightReading(
            status="ok", mass_kg=self.docked.mass_kg, stable=True, node_id="scale-fixed"
        )

    async def read_sensors(self, timeout: float) -> SensorReading:
        """The bench sensors: room temperature, and the gas sensor's alarm when set."""
        assert self.docked is not None
        return SensorReading(
            status="ok",
            node_id="sensors-fixed",
            temperatures_c=(22.0,),
            gas_level=0.92 if self.docked.gas_alarm else 0.05,
            gas_alarm=self.docked.gas_alarm,
        )
