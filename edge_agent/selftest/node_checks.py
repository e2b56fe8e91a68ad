"""Default node and scale checks. The nodes package replaces them with real hello/zero checks.

Default ``nodes``: every configured serial port (globs expanded) opens. Default ``scale``: only
reports that no scale check is installed. Replace either with ``register_check(..., replace=True)``.
"""

from __future__ import annotations

import glob

import serial

from edge_agent.selftest.model import CheckContext, Outcome, failed, passed, skipped, warned


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


def check_node_ports(ctx: CheckContext) -> Outcome:
    """Each configured node port can be opened (the nodes package adds the hello exchange)."""
    settings = ctx.config.nodes
    if not settings.ports:
        return skipped("nodes.ports empty")
    plug = (
        "plug the node's USB cable in and check `ls -l /dev/serial/by-id` "
        "and the udev names (/dev/edge-node-*)"
    )
    found, missing = expand_ports(settings.ports)
    if missing:
        return failed(f"no device matches {', '.join(missing)}", plug)
    opened = []
    for port in found:
        try:
            link = serial.serial_for_url(
                port, baudrate=settings.baudrate, timeout=0, do_not_open=True
            )
            link.dtr = False  # ESP32 boards reset on DTR; do not reboot the node for a check
            link.open()
            link.close()
        except (serial.SerialException, OSError, ValueError) as exc:
            return failed(f"cannot open {port}: {exc}", plug + "; the user needs the dialout group")
        opened.append(port)
    return passed(
        f"{len(opened)} port(s) open: {', '.join(opened)} (hello not checked by this build)"
    )


def check_scale_placeholder(ctx: CheckContext) -> Outcome:
    """Without the nodes package's scale check, say so instead of guessing."""
    if not ctx.config.nodes.ports:
        return skipped("no nodes configured")
    return warned(
        "no scale check installed in this build", "run `edge-agent node` tools to zero the scale"
    )
