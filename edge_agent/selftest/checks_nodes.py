"""Real node checks over the nodes package: every port says hello, the scale is stable at zero.

Both checks share one probe per self-test run (the runner starts checks concurrently and a
serial port can only be read by one link at a time): the first check to ask opens every
configured port with :class:`SerialNodeLink`, waits for the hellos, reads a stable weight from
the scale node and closes the links; the other check waits for that result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from edge_agent.config import AgentConfig
from edge_agent.errors import EdgeAgentError
from edge_agent.model import WeightReading
from edge_agent.nodes.link import SerialNodeLink
from edge_agent.nodes.readings import read_weight
from edge_agent.selftest.model import CheckContext, Outcome, failed, passed, skipped, warned
from edge_agent.selftest.node_checks import (
    check_node_ports,
    check_scale_placeholder,
    expand_ports,
)
from edge_agent.selftest.registry import register_check

log = logging.getLogger("edge_agent.selftest.nodes")

PLUG_STEP = (
    "plug the node's USB cable in and check `ls -l /dev/serial/by-id` "
    "and the udev names (/dev/edge-node-*)"
)
HELLO_STEP = (
    "the port opens but the node is silent: check it runs the edge-agent firmware "
    "(`edge-agent node list`), power-cycle it, and check nodes.baudrate"
)
TARE_STEP = "remove the load and tare: edge-agent node tare"


@dataclass
class NodeProbe:
    """What one pass over the node ports found."""

    missing: list[str] = field(default_factory=list)  # glob patterns matching nothing
    hellos: dict[str, str] = field(default_factory=dict)  # port -> "node_id role fw"
    silent: dict[str, str] = field(default_factory=dict)  # port -> why no hello
    scale_port: str = ""
    weight: WeightReading | None = None


_probe_lock = threading.Lock()
# id(ctx) -> (ctx, probe); the context is kept so its id cannot be reused while cached
_probes: dict[int, tuple[CheckContext, NodeProbe]] = {}
_KEEP = 4


def probe_nodes(ctx: CheckContext) -> NodeProbe:
    """Run the node probe once per context (later callers get the same result)."""
    with _probe_lock:
        cached = _probes.get(id(ctx))
        if cached is not None and cached[0] is ctx:
            return cached[1]
        probe = asyncio.run(_probe(ctx.config))
        while len(_probes) >= _KEEP:
            del _probes[next(iter(_probes))]
        _probes[id(ctx)] = (ctx, probe)
        return probe


async def _probe(config: AgentConfig) -> NodeProbe:
    settings = config.nodes
    ports, missing = expand_ports(settings.ports)
    probe = NodeProbe(missing=missing)
    for port in ports:
        link = SerialNodeLink(
            port, baudrate=settings.baudrate, hello_timeout_s=settings.hello_timeout_s
        )
        try:
            try:
                await link.start(wait_hello=True)
            except EdgeAgentError as exc:
                why = str(exc)
                if link.last_error:
                    why += f" ({link.last_error})"
                probe.silent[port] = why
                log.warning("self-test: %s", why)
                continue
            hello = link.hello
            assert hello is not None
            probe.hellos[port] = f"{link.node_id} {hello.role} fw {hello.fw or '?'}"
            if "scale" in hello.role and probe.weight is None:
                probe.scale_port = port
                probe.weight = await read_weight(link, settings.stable_timeout_s)
        finally:
            with contextlib.suppress(Exception):
                await link.close()
    return probe


def check_nodes_hello(ctx: CheckContext) -> Outcome:
    """Every configured node port opens and the node on it answers hello."""
    if not ctx.config.nodes.ports:
        return skipped("nodes.ports empty")
    probe = probe_nodes(ctx)
    if probe.missing:
        return failed(f"no device matches {', '.join(probe.missing)}", PLUG_STEP)
    if probe.silent:
        port, why = next(iter(probe.silent.items()))
        step = PLUG_STEP if "open " in why else HELLO_STEP
        return failed(f"no hello on {port}: {why}", step)
    said = "; ".join(f"{port}: {who}" for port, who in probe.hellos.items())
    return passed(f"{len(probe.hellos)} node(s) said hello: {said}")


def scale_outcome(reading: WeightReading, config: AgentConfig) -> Outcome:
    """Judge one weight reading taken with nothing docked."""
    if reading.status == "failed" or reading.mass_kg is None:
        why = "; ".join(reading.problems) or "no weight"
        return failed(
            f"scale gives no usable weight: {why}",
            "check the load cell wiring to the HX711/NAU7802 board, then `edge-agent node monitor`",
        )
    kg = reading.mass_kg
    division = reading.division_kg or 0.0
    tolerance = max(2 * division, 0.02)
    shown = f"{kg:.3f} kg (e = {division * 1000:g} g)"
    if not reading.stable:
        return warned(
            f"not stable: {shown}; {'; '.join(reading.problems)}",
            "make sure nothing touches the platform and it stands level on a firm floor; rerun",
        )
    if abs(kg) > config.station.dock_weight_threshold_kg:
        # above the dock threshold the station would start identifying an empty bench
        return failed(f"{shown} with nothing docked", TARE_STEP)
    if abs(kg) > tolerance:
        return warned(f"{shown} with nothing docked (more than 2 e off zero)", TARE_STEP)
    if "scale not calibrated" in reading.problems:
        return warned(
            f"stable at {shown} but not calibrated",
            "calibrate: edge-agent node calibrate --zero, then --span KG with a test weight",
        )
    return passed(f"stable at {shown}")


def check_scale_zero(ctx: CheckContext) -> Outcome:
    """The scale node reports a stable weight near zero with nothing docked."""
    if not ctx.config.nodes.ports:
        return skipped("no nodes configured")
    probe = probe_nodes(ctx)
    if probe.weight is None:
        if not probe.hellos:
            return failed("no node answered, so no scale", "fix the Nodes line first")
        return failed(
            "no node reports the scale role",
            "add the scale node's port to nodes.ports (`edge-agent node list` shows roles)",
        )
    outcome = scale_outcome(probe.weight, ctx.config)
    return Outcome(
        verdict=outcome.verdict,
        detail=f"{probe.scale_port}: {outcome.detail}",
        next_step=outcome.next_step,
    )


def _nodes_required(config: AgentConfig) -> bool:
    return bool(config.nodes.ports)


# hello wait per port plus up to stable_timeout_s for the weight, generous for slow boards
PROBE_TIMEOUT_S = 30.0


def register_node_checks() -> None:
    """Install the real ``nodes`` and ``scale`` checks over the port-only defaults."""
    register_check(
        "nodes",
        check_nodes_hello,
        title="Nodes",
        required=_nodes_required,
        timeout_s=PROBE_TIMEOUT_S,
        replace=True,
    )
    register_check(
        "scale",
        check_scale_zero,
        title="Scale at zero",
        required=_nodes_required,
        timeout_s=PROBE_TIMEOUT_S,
        replace=True,
    )


@contextlib.contextmanager
def port_only_node_checks() -> Iterator[None]:
    """Temporarily install the port-only defaults (for benches whose 'node' is a bare pty)."""
    register_check("nodes", check_node_ports, title="Nodes", required=_nodes_required, replace=True)
    register_check(
        "scale",
        check_scale_placeholder,
        title="Scale at zero",
        required=_nodes_required,
        replace=True,
    )
    try:
        yield
    finally:
        register_node_checks()
