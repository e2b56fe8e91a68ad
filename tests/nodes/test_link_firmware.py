"""Agent <-> real firmware under the MicroPython unix port, over a pty."""

from __future__ import annotations

import asyncio
import json

import pytest

from edge_agent.errors import NodeCommandError
from edge_agent.nodes.link import SerialNodeLink
from edge_agent.nodes.messages import Hello, Nak
from edge_agent.nodes.protocol import frame
from edge_agent.nodes.readings import dock_events, read_sensors, read_weight
from edge_agent.sim.node_sim import NodeSimulator
from tests.support.nodes import wait_for, with_node


def test_hello_stable_weight_within_e_and_tare() -> None:
    async def body(sim: NodeSimulator, link: SerialNodeLink) -> None:
        assert link.hello is not None
        assert (link.node_id, link.hello.role, link.hello.reset_cause) == (
            "e66141040327582a",
            "scale+sensors",
            "PWRON",
        )
        assert len(link.boot) == 8
        sim.set_weight_kg(312.5)
        await sim.applied()
        r = await read_weight(link, timeout=10)
        assert r.status == "ok" and r.stable and r.indicative
        assert r.division_kg == 0.05 and r.mass_kg is not None
        assert abs(r.mass_kg - 312.5) <= 0.05
        ack = await link.command("tare", timeout=8)
        assert ack.ok and ack.result["tare_g"] == pytest.approx(312500, abs=50)
        sim.set_weight_kg(320.0)
        await sim.applied()
        r = await read_weight(link, timeout=10)
        assert r.mass_kg is not None and abs(r.mass_kg - 7.5) <= 0.05

    with_node(body)


def test_two_point_calibration_with_known_weight() -> None:
    async def body(sim: NodeSimulator, link: SerialNodeLink) -> None:
        r = await read_weight(link, timeout=10)
        assert "scale not calibrated" in r.problems
        await link.command("calibrate", {"point": "zero"}, timeout=8)
        sim.set_weight_kg(20.0)
        await sim.applied()
        ack = await link.command("calibrate", {"point": "span", "kg": 20.0}, timeout=8)
        assert ack.result["cpk"] == pytest.approx(2000, rel=0.01)
        with pytest.raises(NodeCommandError) as err:
            await link.command("calibrate", {"point": "span", "kg": -1}, timeout=8)
        assert err.value.reason == "span"
        sim.set_weight_kg(57.35)
        await sim.applied()
        r = await read_weight(link, timeout=10)
        assert r.status == "ok" and r.mass_kg is not None
        assert abs(r.mass_kg - 57.35) <= 0.05 + 1e-9

    with_node(body, sim_kwargs={"calibrated": False})


def test_unplug_replug_resyncs_and_reboot_resends_config() -> None:
    async def body(sim: NodeSimulator, link: SerialNodeLink) -> None:
        boot1 = link.boot
        await wait_for(lambda: link.stats["config_sent"] == 1)
        await sim.replug(stale=b'"net_g": 1234, "stable": true}*0badc0de\n')
        await wait_for(lambda: link.stats["reconnects"] == 1 and link.connected.is_set())
        await link.wait_hello(10)
        assert link.boot == boot1 and link.stats["config_sent"] == 1  # same boot: no re-send
        sim.set_weight_kg(42.0)
        await sim.applied()
        r = await read_weight(link, timeout=10)
        assert r.mass_kg == pytest.approx(42.0, abs=0.05)
        await sim.reboot()
        await wait_for(lambda: link.boot != boot1)
        await wait_for(lambda: link.stats["config_sent"] == 2)
        ack = await link.command("get_config", timeout=5)
        assert ack.result["config"]["e_g"] == 20
        r = await read_weight(link, timeout=10)
        assert r.division_kg == 0.02 and r.mass_kg == pytest.approx(42.0, abs=0.02)

    with_node(body, link_kwargs={"node_config": {"e_g": 20, "band_g": 20}})


def caplog_text(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records)


def test_corrupted_truncated_and_foreign_version_lines(caplog: pytest.LogCaptureFixture) -> None:
    async def body(sim: NodeSimulator, link: SerialNodeLink) -> None:
        await read_weight(link, timeout=10)  # past the power-on zero-setting
        bad0 = link.stats["bad"]
        good = frame(
            json.dumps(
                {
                    "v": 1,
                    "t": "dock",
                    "node": "ab",
                    "boot": "00000000",
                    "seq": 1,
                    "ts": 1,
                    "docked": True,
                }
            ).encode()
        )
        sim.inject(good[:-5] + b"0000\n")  # bit errors -> CRC mismatch
        sim.inject(good[: len(good) // 2] + b"\n")  # truncated
        sim.inject(b"Traceback (most recent call last):\n")  # unmarked: logged only
        v2 = frame(
            json.dumps(
                {
                    "v": 2,
                    "t": "hello",
                    "node": "ab",
                    "boot": "00000000",
                    "seq": 0,
                    "ts": 0,
                    "minor": 0,
                }
            ).encode()
        )
        sim.inject(v2)
        await wait_for(lambda: link.stats["bad"] >= bad0 + 3)
        assert "CRC mismatch" in caplog_text(caplog)
        assert link.stats["unmarked"] >= 1
        assert "version" in link.last_error
        assert link.node_id == "e66141040327582a"  # the foreign hello was refused
        # host -> node with another major version: the node naks it by id
        with link.hub.subscribe() as q:
            link._write(frame(b'{"v":2,"t":"cmd","id":77,"op":"tare","args":{}}'))
            async with asyncio.timeout(5):
                while True:
                    m = await q.get()
                    if isinstance(m.body, Nak):
                        break
        assert (m.body.id, m.body.err, m.body.want_v) == (77, "version", 1)
        sim.set_weight_kg(5.0)
        await sim.applied()  # the fake load cell re-reads its control file every 20 ms
        r = await read_weight(link, timeout=10)  # the link still works
        assert r.mass_kg == pytest.approx(5.0, abs=0.05), (r, sim.exits, link.stats)

    with_node(body)


def test_sensors_and_dock_triggers() -> None:
    async def body(sim: NodeSimulator, link: SerialNodeLink) -> None:
        sim.set_temps([21.5, 40.25])
        sim.set_gas(0.8)
        await asyncio.sleep(1.2)
        s = await read_sensors(link, timeout=5, max_age_s=0.5)
        assert s.status in ("ok", "partial")
        triggers = []

        async def collect() -> None:
            async for t in dock_events(link, rise_kg=5.0):
                triggers.append(t)
                if len(triggers) == 2:
                    return

        task = asyncio.create_task(collect())
        await asyncio.sleep(0.1)  # let the collector subscribe
        sim.set_dock(True)
        await sim.applied()
        sim.set_weight_kg(250.0)
        await asyncio.wait_for(task, 10)
        assert [(t.kind, t.docked) for t in triggers] == [("dock_switch", True), ("weight", True)]
        assert triggers[1].mass_kg == pytest.approx(250.0, abs=0.05)
        s = await read_sensors(link, timeout=5, max_age_s=0.0)
        assert s.docked is True and s.gas_alarm is True
        assert s.gas_level == pytest.approx(0.8, abs=0.01)
        assert s.temperatures_c == (21.5, 40.25)

    with_node(body)


def test_silent_adc_starves_watchdog_and_node_reboots_with_wdt_cause() -> None:
    async def body(sim: NodeSimulator, link: SerialNodeLink) -> None:
        boot1 = link.boot
        sim.set_fault(hx_dead=True)
        r = await read_weight(link, timeout=5)
        assert r.status == "failed" and r.problems == ("scale fault: adc_timeout",)
        await wait_for(lambda: link.boot != boot1, timeout=15)
        assert isinstance(link.hello, Hello) and link.hello.reset_cause == "WDT"
        assert sim.exits == [86]

    with_node(body, sim_kwargs={"config": {"wdt_ms": 1000, "sample_timeout_ms": 100}})


def test_nau7802_scale_node_end_to_end() -> None:
    async def body(sim: NodeSimulator, link: SerialNodeLink) -> None:
        assert link.hello is not None and link.hello.adc == "nau7802"
        r = await read_weight(link, timeout=10)
        assert r.status == "ok" and r.mass_kg == pytest.approx(60.0, abs=0.05)

    with_node(body, sim_kwargs={"role": "scale", "weight_kg": 60.0, "config": {"adc": "nau7802"}})
