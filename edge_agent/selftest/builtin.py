"""Register the built-in checks in display order (called once by the package import)."""

from __future__ import annotations

from edge_agent.config import AgentConfig
from edge_agent.selftest.bms_info import can_required, modbus_required
from edge_agent.selftest.camera_check import check_camera
from edge_agent.selftest.can_check import check_can
from edge_agent.selftest.host_checks import check_clock, check_disk, check_signing_key
from edge_agent.selftest.modbus_check import check_modbus
from edge_agent.selftest.mqtt_check import check_broker
from edge_agent.selftest.node_checks import check_node_ports, check_scale_placeholder
from edge_agent.selftest.registry import always, never, register_check


def _camera_required(config: AgentConfig) -> bool:
    return bool(config.label.source) or config.label.backend == "picamera2"


def _nodes_required(config: AgentConfig) -> bool:
    return bool(config.nodes.ports)


def _broker_required(config: AgentConfig) -> bool:
    return bool(config.uplink.mqtt.host)


def register_builtin_checks() -> None:
    """Register (or re-register) every built-in check."""
    register_check(
        "can",
        check_can,
        title="CAN bus",
        required=can_required,
        timeout_s=10,
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
        required=_camera_required,
        timeout_s=15,
        order=30,
        replace=True,
    )
    register_check(
        "nodes",
        check_node_ports,
        title="Nodes",
        required=_nodes_required,
        timeout_s=10,
        order=40,
        replace=True,
    )
    register_check(
        "scale",
        check_scale_placeholder,
        title="Scale at zero",
        required=_nodes_required,
        order=50,
        replace=True,
    )
    register_check(
        "broker",
        check_broker,
        title="MQTT broker",
        required=_broker_required,
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
    # the field kit's real checks replace the port-only node defaults and add the BMS probe
    from edge_agent.selftest.checks_bms import register_bms_probe
    from edge_agent.selftest.checks_nodes import register_node_checks

    register_bms_probe()
    register_node_checks()
