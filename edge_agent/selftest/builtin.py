"""Register the built-in checks in display order (called once by the package import)."""

from __future__ import annotations

from edge_agent.selftest.checks import can, nodes
from edge_agent.selftest.checks.bms import can_required, modbus_required
from edge_agent.selftest.checks.broker import broker_required, check_broker
from edge_agent.selftest.checks.camera import camera_required, check_camera
from edge_agent.selftest.checks.clock import check_clock
from edge_agent.selftest.checks.disk import check_disk
from edge_agent.selftest.checks.key import check_signing_key
from edge_agent.selftest.checks.modbus import check_modbus
from edge_agent.selftest.checks.outbox import check_outbox_rows
from edge_agent.selftest.checks.scale import check_scale
from edge_agent.selftest.registry import always, never, register_check


def register_builtin_checks() -> None:
    """Register (or re-register) every built-in check."""
    register_check(
        "can",
        can.check_can,
        title="CAN bus",
        required=can_required,
        timeout_s=can.TIMEOUT_S,
        order=10,
        replace=True,
    )
    register_check(
        "modbus",
        check_modbus,
        title="Modbus device",
        required=modbus_required,
        timeout_s=15,
        order=20,
        replace=True,
    )
    register_check(
        "camera",
        check_camera,
        title="Label camera",
        required=camera_required,
        timeout_s=15,
        order=30,
        replace=True,
    )
    register_check(
        "nodes",
        nodes.check_nodes,
        title="Nodes",
        required=nodes.nodes_required,
        timeout_s=nodes.PROBE_TIMEOUT_S,
        order=40,
        replace=True,
    )
    register_check(
        "scale",
        check_scale,
        title="Scale at zero",
        required=nodes.nodes_required,
        timeout_s=nodes.PROBE_TIMEOUT_S,
        order=50,
        replace=True,
    )
    register_check(
        "broker",
        check_broker,
        title="MQTT broker",
        required=broker_required,
        order=60,
        replace=True,
    )
    register_check(
        "key", check_signing_key, title="Signing key", required=always, order=70, replace=True
    )
    register_check(
        "clock",
        check_clock,
        title="Clock sync",
        required=never,
        timeout_s=5,
        order=80,
        replace=True,
    )
    register_check(
        "disk",
        check_disk,
        title="Outbox disk",
        required=always,
        timeout_s=5,
        order=90,
        replace=True,
    )
    register_check(
        "outbox",
        check_outbox_rows,
        title="Outbox rows",
        required=never,
        timeout_s=5,
        order=95,
        replace=True,
    )
