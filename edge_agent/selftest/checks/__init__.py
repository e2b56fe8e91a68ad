"""The built-in self-test checks, one module per part, each calling the part's real seam.

can (the station's bus opener, then the BMS probe through the pack profile's source), modbus
(the agent's ModbusLink), camera (the Camera seam and vision.quality), nodes and scale (the
node link), broker (the MQTT client), key, clock, disk (the outbox's filesystem),
outbox (rows the gateway rejected); bms holds the
pack-profile helpers shared by can and modbus.
"""

from edge_agent.selftest.checks.broker import check_broker
from edge_agent.selftest.checks.camera import check_camera
from edge_agent.selftest.checks.can import check_can
from edge_agent.selftest.checks.clock import check_clock
from edge_agent.selftest.checks.disk import check_disk
from edge_agent.selftest.checks.key import check_signing_key
from edge_agent.selftest.checks.modbus import check_modbus
from edge_agent.selftest.checks.nodes import check_nodes
from edge_agent.selftest.checks.outbox import check_outbox_rows
from edge_agent.selftest.checks.scale import check_scale

__all__ = [
    "check_broker",
    "check_camera",
    "check_can",
    "check_clock",
    "check_disk",
    "check_modbus",
    "check_nodes",
    "check_outbox_rows",
    "check_scale",
    "check_signing_key",
]
