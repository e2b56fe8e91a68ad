"""`identify` while an identification runs joins it (the same event); intake fields entered at
the bench (technician, consignor) reach the signed event; a bad USCC is refused."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

from edge_agent.config import config_from_plain
from edge_agent.model import BmsReading, Consignor, Observation
from edge_agent.station.agent import StationAgent
from edge_agent.station.control import request_identify, serve_control
from tests.station.procs import run_cli
from tests.support.mosquitto import MosquittoBroker, mosquitto_broker
from tests.support.station import (
    healthy_bms,
    instant_sources,
    station_files,
    station_plain,
    write_config,
)

__all__ = ["mosquitto_broker"]
USCC = "91350100M000100Y43"


def _slow_sources(delay: float):  # type: ignore[no-untyped-def]
    fast = instant_sources()
    calls: list[float] = []

    async def read_bms(timeout: float) -> BmsReading:
        calls.append(timeout)
        await asyncio.sleep(delay)
        return healthy_bms()

    return replace(fast, bms=read_bms), calls


def test_identify_while_one_runs_returns_the_same_event(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    files = station_files(tmp_path)
    config = config_from_plain(station_plain(files, mosquitto_broker))
    sources, calls = _slow_sources(0.8)

    async def main() -> None:
        async with StationAgent(config, sources=sources) as agent:
            docked = asyncio.create_task(agent.identify(trigger="dock_switch"))
            await asyncio.sleep(0.2)
            assert agent.identifying
            joined = await agent.identify()  # the technician presses identify meanwhile
            first = await docked
            assert joined.event.event_id == first.event.event_id
            assert first.event.trigger == "dock_switch"
            assert len(calls) == 1
            # an identify that brings an observation the running one lacks gets its own event
            again = asyncio.create_task(agent.identify(trigger="dock_switch"))
            await asyncio.sleep(0.2)
            own = await agent.identify(observations=("dent",), technician="tech-3")
            assert own.event.event_id != (await again).event.event_id
            assert own.event.observations == ("dent",)
            assert own.event.intake is not None
            assert own.event.intake.observations == (Observation(what="dent", by="tech-3"),)
            assert len(calls) == 3
            assert not agent.identifying

    asyncio.run(asyncio.wait_for(main(), 60))


def test_control_socket_takes_and_checks_the_intake_fields(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    files = station_files(tmp_path)
    config = config_from_plain(
        station_plain(files, mosquitto_broker, station={"enterprise_id": "91310000717866186P"})
    )
    path = tmp_path / "agent.sock"

    async def main() -> None:
        async with StationAgent(config, sources=instant_sources()) as agent:

            async def handler(request: dict[str, object]) -> dict[str, object]:
                consignor = Consignor(
                    name=request.get("consignor_name"),  # type: ignore[arg-type]
                    uscc=request.get("consignor_uscc"),  # type: ignore[arg-type]
                )
                result = await agent.identify(
                    consignor=consignor,
                    technician=request.get("technician"),  # type: ignore[arg-type]
                )
                intake = result.event.intake
                assert intake is not None
                return {
                    "ok": True,
                    "consignor": str(intake.consignor),
                    "site": intake.enterprise_id,
                }

            server = await serve_control(path, handler)
            try:
                bad = await request_identify(path, [], 1.0, consignor_uscc="91350100M000100Y44")
                assert bad["ok"] is False and "check character" in str(bad["error"])
                good = await request_identify(
                    path, [], 1.0, consignor_name="Example Dismantler", consignor_uscc=USCC.lower()
                )
                assert good["ok"] is True
                assert USCC in str(good["consignor"]) and "Example Dismantler" in str(
                    good["consignor"]
                )
                assert good["site"] == "91310000717866186P"
            finally:
                server.close()
                await server.wait_closed()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_identify_flags_reach_the_event_and_a_bad_uscc_is_refused(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    files = station_files(tmp_path)
    config = write_config(tmp_path / "agent.toml", station_plain(files, mosquitto_broker))
    refused = run_cli(config, "identify", "--consignor-uscc", "91350100M000100Y44")
    assert refused.returncode == 2
    assert "check character '4' does not match" in refused.stderr
    done = run_cli(
        config,
        "identify",
        "--json",
        "--observe",
        "dent",
        "--technician",
        "tech-5",
        "--consignor-name",
        "Example Dismantler",
        "--consignor-uscc",
        USCC,
    )
    assert done.returncode == 0, done.stderr
    intake = json.loads(done.stdout)["event"]["intake"]
    assert intake["consignor"] == {"name": "Example Dismantler", "uscc": USCC}
    assert intake["technician"] == "tech-5"
    assert intake["observations"] == [{"what": "dent", "by": "tech-5"}]
