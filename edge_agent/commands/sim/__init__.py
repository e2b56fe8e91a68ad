"""``edge-agent sim``: run a simulator as a process (BMS over CAN/Modbus, node, label, field kit)."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["SIMULATORS", "register"]

# simulator command name -> module exposing ``register(subparsers, name)``
SIMULATORS: dict[str, str] = {
    "bms-can": "edge_agent.commands.sim.bms_can",
    "bms-modbus": "edge_agent.commands.sim.bms_modbus",
    "node": "edge_agent.commands.sim.node",
    "label": "edge_agent.commands.sim.label",
    "fieldkit": "edge_agent.commands.sim.fieldkit",
}


def register(sub: Any) -> None:
    """Add ``sim <name>`` for every simulator module that exists."""
    parser = sub.add_parser(
        "sim", help="run a simulator (BMS, node, label camera, whole field kit)"
    )
    commands = parser.add_subparsers(dest="sim_command", metavar="SIMULATOR", required=True)
    for name, module_name in SIMULATORS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.register(commands, name)
