"""Nodes check: every configured port opens and its node says hello over the node link.

The ``nodes`` and ``scale`` checks share one probe per self-test run (the runner starts checks
concurrently and a serial port can only be read by one link at a time): the first check to ask
opens every configured port with :class:`SerialNodeLink`, waits for the hellos, reads a stable
weight from the scale node and closes the links; the other check waits for that result.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import logging
import threading
from dataclasses import dataclass, field

from edge_agent.errors import EdgeAgentError
from edge_agent.model import WeightReading
from edge_agent.nodes.link import SerialNodeLink
from edge_agent.nodes.readings import read_weight
from edge_agent.selftest.model import (
    CheckContext,
    Outcome,
    SelftestConfig,
    failed,
    passed,
    skipped,
)

log = logging.getLogger("edge_agent.selftest.nodes")

PLUG_STEP = (
    "plug the node's USB cable in and check `ls -l /dev/serial/by-id` "
    "and the udev names (/dev/edge-node-*)"
)
HELLO_STEP = (
    "the port opens but the node is silent: check it runs the edge-agent firmware "
    "(`edge-agent node list`), power-cycle it, and check nodes.baudrate"
)

# hello wait per port plus up to stable_timeout_s for the weight, generous for slow boards
PROBE_TIMEOUT_S = 30.0


def nodes_required(config: SelftestConfig) -> bool:
    """Required rule (nodes and scale): node ports are configured."""
    return bool(config.nodes.ports)


def expand_ports(patterns: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(ports found, patterns that matched nothing); URLs like ``socket://`` pass through."""
    found: list[str] = []
    missing: list[str] = []
    for pattern in patterns:
        if "://" in pattern:
            found.append(pattern)
        elif any(ch in pattern for ch in "*?["):
            hits = sorted(glob.glob(pattern))
            found.extend(hits) if hits else missing.append(pattern)
        else:
            found.append(pattern)
    return found, missing


@dataclass
class NodeProbe:
    """What one pass over the node ports found."""

    missing: list[str] = field(default_factory=list)  # glob patterns matching nothing
    hellos: dict[str, str] = field(default_factory=dict)  # port -> "node_id role fw"
    silent: dict[str, str] = field(default_factory=dict)  # port -> why no hello
    unopened: set[str] = field(default_factory=set)  # ports the link never managed to open
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


async def _probe(config: SelftestConfig) -> NodeProbe:
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
                if not link.connected.is_set() and not link.stats["reconnects"]:
                    probe.unopened.add(port)
                    if not link.last_error:
                        why += " (no such device)"
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


def check_nodes(ctx: CheckContext) -> Outcome:
    """Every configured node port opens and the node on it answers hello."""
    if not ctx.config.nodes.ports:
        return skipped("nodes.ports empty")
    probe = probe_nodes(ctx)
    if probe.missing:
        return failed(f"no device matches {', '.join(probe.missing)}", PLUG_STEP)
    if probe.silent:
        port, why = next(iter(probe.silent.items()))
        step = HELLO_STEP
        if port in probe.unopened:
            # a port that exists but does not open is most often a permission problem
            step = PLUG_STEP + ("; the user needs the dialout group" if "open " in why else "")
        return failed(f"no hello on {port}: {why}", step)
    said = "; ".join(f"{port}: {who}" for port, who in probe.hellos.items())
    return passed(f"{len(probe.hellos)} node(s) said hello: {said}")
