"""CAN check: the interface is up at the configured bitrate, frames arrive within a window, and
the BMS answers through the pack profile when the station requires a BMS reading.

The BMS probe runs in the ``can`` check's thread, after the frame window, because a serial CAN
adapter has one reader.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import can

from edge_agent.bms.can.bus import open_bus
from edge_agent.bms.settings import CanSettings
from edge_agent.errors import BusError
from edge_agent.selftest.checks.bms import PROBE_TIMEOUT_S, can_required, probe_can_bms
from edge_agent.selftest.model import (
    CheckContext,
    Outcome,
    SelftestConfig,
    Verdict,
    failed,
    passed,
    warned,
)

log = logging.getLogger("edge_agent.selftest.can")

LINK = "link"
FRAMES = "frames"


def ip_link_details(ifname: str) -> Mapping[str, Any] | None:
    """`ip -details -json link show dev IFNAME` as one dict; None when ip is missing or fails."""
    tool = shutil.which("ip")
    if tool is None:
        return None
    try:
        out = subprocess.run(
            [tool, "-details", "-json", "link", "show", "dev", ifname],
            check=False,
            capture_output=True,
            text=True,
            timeout=3,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return parse_ip_link_json(out.stdout)


def parse_ip_link_json(text: str) -> Mapping[str, Any] | None:
    """The first link object of `ip -json link` output; None when it is not that shape."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return data[0]
    return None


def link_bitrate(link: Mapping[str, Any]) -> int | None:
    """linkinfo.info_data.bittiming.bitrate of a CAN link, if present."""
    info = link.get("linkinfo")
    data = info.get("info_data") if isinstance(info, dict) else None
    timing = data.get("bittiming") if isinstance(data, dict) else None
    rate = timing.get("bitrate") if isinstance(timing, dict) else None
    return rate if isinstance(rate, int) else None


def _link_kind(link: Mapping[str, Any]) -> str | None:
    info = link.get("linkinfo")
    kind = info.get("info_kind") if isinstance(info, dict) else None
    return kind if isinstance(kind, str) else None


def link_can_state(link: Mapping[str, Any]) -> str | None:
    """linkinfo.info_data.state (ERROR-ACTIVE, ERROR-PASSIVE, BUS-OFF, STOPPED...)."""
    info = link.get("linkinfo")
    data = info.get("info_data") if isinstance(info, dict) else None
    state = data.get("state") if isinstance(data, dict) else None
    return state if isinstance(state, str) else None


def _network_file(channel: str) -> str:
    return f"/etc/systemd/network/80-{channel}.network"


def socketcan_link(ctx: CheckContext, settings: CanSettings) -> Outcome:
    """Kernel CAN interface: in sysfs, operstate up, bitrate and controller state as configured."""
    ch = settings.channel
    net = ctx.sysfs_root / "class" / "net" / ch
    if not net.exists():
        return failed(
            f"no network interface {ch}",
            "HAT: check the dtoverlay line in /boot/firmware/config.txt and "
            "`dmesg | grep -i mcp25`; "
            "USB: replug the adapter and check `ip link`",
            line=LINK,
        )
    operstate = _read(net / "operstate")
    provider = ctx.ip_link if ctx.ip_link is not None else ip_link_details
    details = provider(ch)
    rate = link_bitrate(details) if details else None
    expected = settings.bitrate
    if rate is not None and rate != expected:
        return failed(
            f"{ch} runs at {rate} bit/s, config wants {expected}",
            f"set BitRate={expected} in {_network_file(ch)}, then "
            f"`networkctl reload && networkctl reconfigure {ch}`",
            line=LINK,
        )
    if operstate not in {"up", "unknown"}:
        return failed(
            f"{ch} operstate is {operstate or 'unreadable'}",
            f"bring it up: `networkctl up {ch}` "
            f"(or `ip link set {ch} up type can bitrate {expected}`)",
            line=LINK,
        )
    state = link_can_state(details) if details else None
    if state == "BUS-OFF":
        return failed(
            f"{ch} controller is BUS-OFF",
            "check CAN-H/CAN-L wiring, 120 ohm termination at both ends, and the pack's bitrate",
            line=LINK,
        )
    if rate is None and details is not None and _link_kind(details) == "vcan":
        return passed(f"{ch} {operstate}: virtual CAN (vcan), no bitrate", line=LINK)
    if rate is None:
        return warned(
            f"{ch} is {operstate}; bitrate unknown (no `ip -details` info)",
            f"check with `ip -details link show {ch}`",
            line=LINK,
        )
    if state == "ERROR-PASSIVE":
        return warned(
            f"{ch} up at {rate} bit/s but ERROR-PASSIVE", "check termination and ground", line=LINK
        )
    return passed(f"{ch} {operstate} at {rate} bit/s, state {state or 'n/a'}", line=LINK)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""


def watch_frames(bus: can.BusABC, window_s: float) -> tuple[int, set[int]]:
    """Count frames and distinct arbitration ids seen within the window."""
    count, ids = 0, set()
    deadline = time.monotonic() + window_s
    while (left := deadline - time.monotonic()) > 0:
        msg = bus.recv(timeout=left)
        if msg is None:
            break
        if msg.is_error_frame:
            continue
        count += 1
        ids.add(msg.arbitration_id)
    return count, ids


def check_can_bus(ctx: CheckContext) -> list[Outcome]:
    """CAN link state (sysfs + ip for live SocketCAN, opening the bus otherwise), then frames."""
    settings = ctx.config.bms.can
    outcomes: list[Outcome] = []
    live_socketcan = settings.interface == "socketcan" and not settings.replay
    if live_socketcan:
        link = socketcan_link(ctx, settings)
        outcomes.append(link)
        if link.verdict is Verdict.FAIL:
            return outcomes
    try:
        bus = open_bus(settings)  # the station's own way to open the bus (or its replay)
    except BusError as exc:
        log.warning("cannot open CAN bus %s/%s: %s", settings.interface, settings.channel, exc)
        outcomes.append(
            failed(
                str(exc),
                "check bms.can.interface/channel and that the adapter is plugged in "
                "(`ls -l /dev/serial/by-id`)",
                line=LINK,
            )
        )
        return outcomes
    try:
        if not live_socketcan:
            where = (
                f"replay {settings.replay}"
                if settings.replay
                else f"{settings.interface} {settings.channel}"
            )
            outcomes.append(passed(f"{where} opened", line=LINK))
        count, ids = watch_frames(bus, ctx.frame_window_s)
    finally:
        bus.shutdown()
    if count:
        outcomes.append(
            passed(f"{count} frames from {len(ids)} ids in {ctx.frame_window_s:g} s", line=FRAMES)
        )
    else:
        outcomes.append(
            warned(
                f"no frames in {ctx.frame_window_s:g} s",
                "normal without a docked pack; otherwise switch on the 12 V wake-up supply "
                "and check CAN-H/CAN-L, termination and the bitrate",
                line=FRAMES,
                required=False,
            )
        )
    return outcomes


def bms_probe_wanted(config: SelftestConfig) -> bool:
    """True when the station requires a BMS reading and reads it over CAN."""
    return config.station.bms.required and can_required(config)


def check_can(ctx: CheckContext) -> list[Outcome]:
    """The CAN bus lines, then the BMS probe when the station requires a BMS reading."""
    outcomes = check_can_bus(ctx)
    if not bms_probe_wanted(ctx.config):
        return outcomes
    if any(o.verdict is Verdict.FAIL for o in outcomes):
        return outcomes  # the link itself is broken; the link line already says what to do
    outcomes.append(probe_can_bms(ctx.config))
    return outcomes


# 10 s for the link and the frame window, then the BMS probe's own limit
TIMEOUT_S = 10.0 + PROBE_TIMEOUT_S
