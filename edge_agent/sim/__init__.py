"""Simulators used by tests, the demo and field kits: BMSs on CAN and Modbus, nodes under the
MicroPython unix port, label photos, an embedded MQTT broker.

Public modules: ``demo`` (``edge-agent demo``), ``fieldkit`` (a whole station of
simulator processes, the field kit), and one module per simulated part.
"""

# public modules; importing the package imports none of them
__all__ = [
    "broker",
    "can_dbc",
    "can_gbt",
    "can_pty",
    "can_uds",
    "demo",
    "demo_packs",
    "fieldkit",
    "fieldkit_dock",
    "label_render",
    "modbus_regmap",
    "modbus_server",
    "modbus_sunspec",
    "node_sim",
]
