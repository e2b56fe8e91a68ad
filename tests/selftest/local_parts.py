"""Real local parts for the self-test, and a config pointing at them."""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_agent.config import AgentConfig, config_from_plain
from edge_agent.selftest import CheckContext, Report, run_selftest
from edge_agent.sim.node_sim import NodeSimulator
from tests.support.hardware import (
    Broker,
    ModbusServer,
    can_sender,
    key_dir,
    label_image,
    modbus_tcp_server,
    mosquitto,
    unique_channel,
)
from tests.support.nodes import require_micropython

CAN_PROFILE = 'name = "bench-can"\ntransport = "can"\nmethods = ["gbt27930"]\n'
MODBUS_PROFILE = 'name = "bench-modbus"\ntransport = "modbus"\nmethods = ["sunspec"]\n'


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge two plain config dicts (over wins)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


@dataclass
class LocalParts:
    """Running parts plus the plain config that describes them."""

    tmp: Path
    broker: Broker
    modbus: ModbusServer
    channel: str
    node_port: str
    plain: dict[str, Any] = field(default_factory=dict)

    def config(self, **overrides: Any) -> AgentConfig:
        """The bench config with section overrides (deep-merged)."""
        return config_from_plain(merge(self.plain, overrides))

    def run(self, config: AgentConfig | None = None, **ctx: Any) -> Report:
        """Run the full self-test against this bench."""
        run_root = self.tmp / "run"
        context = CheckContext(
            config=config or self.config(),
            run_root=run_root,
            frame_window_s=ctx.pop("frame_window_s", 1.0),
            **ctx,
        )
        return run_selftest(context)


@contextmanager
def scale_node(workdir: Path) -> Iterator[str]:
    """The node firmware under the MicroPython unix port in its own loop thread; its port."""
    require_micropython()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="bench-node-sim", daemon=True)
    thread.start()
    sim = NodeSimulator(role="scale+sensors", workdir=workdir)
    try:
        asyncio.run_coroutine_threadsafe(sim.start(), loop).result(timeout=60)
        yield sim.port
    finally:
        asyncio.run_coroutine_threadsafe(sim.close(), loop).result(timeout=60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def start_bench(tmp: Path, stack: ExitStack) -> LocalParts:
    """Start Mosquitto, Modbus, a CAN sender and a scale node; write images, keys, profiles."""
    node_port = stack.enter_context(scale_node(tmp / "node"))
    broker = stack.enter_context(mosquitto(tmp / "broker"))
    modbus = stack.enter_context(modbus_tcp_server())
    channel = unique_channel()
    stack.enter_context(can_sender(channel))
    label_image(tmp / "camera" / "label-001.png")
    keys = key_dir(tmp / "keys")
    profiles = tmp / "profiles"
    profiles.mkdir()
    (profiles / "bench-can.toml").write_text(CAN_PROFILE, encoding="utf-8")
    (profiles / "bench-modbus.toml").write_text(MODBUS_PROFILE, encoding="utf-8")
    (tmp / "data").mkdir()
    synced = tmp / "run" / "systemd" / "timesync"
    synced.mkdir(parents=True)
    (synced / "synchronized").touch()
    plain = {
        "station": {"data_dir": str(tmp / "data")},
        "signing": {"key_dir": str(keys)},
        "bms": {
            "profile": "bench-can",
            "profile_dirs": [str(profiles)],
            "can": {"interface": "virtual", "channel": channel, "bitrate": 250000},
            "modbus": {
                "url": f"tcp://127.0.0.1:{modbus.port}",
                "device_id": 1,
                "timeout_s": 1.0,
                "retries": 0,
            },
        },
        "label": {"source": str(tmp / "camera"), "backend": "files", "min_sharpness": 60.0},
        "nodes": {"ports": [node_port], "hello_timeout_s": 5.0, "stable_timeout_s": 6.0},
        "uplink": {
            "mqtt": {
                "host": broker.host,
                "port": broker.port,
                "username": broker.username,
                "password": broker.password,
            },
            "outbox": {"min_free_disk_bytes": 1024},
        },
    }
    return LocalParts(
        tmp=tmp, broker=broker, modbus=modbus, channel=channel, node_port=node_port, plain=plain
    )


def parts_fixture(tmp_path: Path) -> Iterator[LocalParts]:
    """Generator body for a pytest fixture."""
    with ExitStack() as stack:
        yield start_bench(tmp_path, stack)
