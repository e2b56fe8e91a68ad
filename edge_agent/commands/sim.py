"""``edge-agent sim``: run a simulator as a process (BMS over CAN/Modbus, node, label, bench)."""

from __future__ import annotations

import importlib
from typing import Any

# simulator command name -> module exposing ``register(subparsers)``; each owned by its area.
SIMULATORS: dict[str, str] = {
    "bms-can": "edge_agent.sim.can_cli",
    "bms-modbus": "edge_agent.sim.modbus_cli",
    "node": "edge_agent.sim.node_cli",
    "label": "edge_agent.sim.label_cli",
    "bench": "edge_agent.sim.bench_cli",
}


def register(sub: Any) -> None:
    """Add ``sim <name>`` for every simulator module that exists."""
    parser = sub.add_parser("sim", help="run a simulator (BMS, node, label camera, whole bench)")
    commands = parser.add_subparsers(dest="sim_command", metavar="SIMULATOR", required=True)
    for name, module_name in SIMULATORS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.register(commands, name)
