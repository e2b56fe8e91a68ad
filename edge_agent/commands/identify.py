"""``edge-agent identify``: one identification now; prints the result and the event id.

When a station service is running it is asked over its control socket (it owns the buses);
otherwise the identification runs in this process and waits for the broker's PUBACK.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import Any

from rich.console import Console

from edge_agent.codes.uscc import parse_uscc
from edge_agent.commands._args import seconds
from edge_agent.config import AgentConfig, check_data_dir, load_config
from edge_agent.errors import CodeError, ControlSocketAccessError, StationError
from edge_agent.event_codec import event_from_plain, event_to_plain
from edge_agent.model import Consignor
from edge_agent.station.control import request_identify, socket_path
from edge_agent.station.view import print_event

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    """Add ``identify``."""
    parser = sub.add_parser("identify", help="identify the docked pack now")
    parser.add_argument(
        "--observe",
        action="append",
        default=[],
        metavar="WHAT",
        help="technician observation (swelling, leak, odour, damage, smoke, ...); repeatable",
    )
    parser.add_argument("--technician", metavar="ID", help="who makes the observations")
    parser.add_argument(
        "--consignor-name", metavar="NAME", help="enterprise delivering the pack (intake record)"
    )
    parser.add_argument(
        "--consignor-uscc",
        metavar="CODE",
        help="its unified social credit code (18 characters, GB 32100; check character verified)",
    )
    parser.add_argument("--wait", type=seconds, default=5.0, help="seconds to wait for PUBACK")
    parser.add_argument("--json", action="store_true", help="print the event as JSON")
    parser.set_defaults(func=_identify)


def _identify(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    check_data_dir(config.station.data_dir)
    observations = [o for item in args.observe for o in item.split(",") if o.strip()]
    intake = {
        key: value.strip()
        for key, value in (
            ("technician", args.technician),
            ("consignor_name", args.consignor_name),
            ("consignor_uscc", args.consignor_uscc),
        )
        if value and value.strip()
    }
    if "consignor_uscc" in intake:
        try:
            intake["consignor_uscc"] = parse_uscc(intake["consignor_uscc"])
        except CodeError as exc:
            print(f"error: --consignor-uscc: {exc}", file=sys.stderr)
            return 2
    path = socket_path(config.station.data_dir)
    answer = None
    if path.exists():
        try:
            answer = asyncio.run(request_identify(path, observations, args.wait, **intake))
        except ControlSocketAccessError as exc:  # a service runs; a second one must not start
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except StationError as exc:  # a socket left behind by a killed service
            log.warning("%s; identifying in this process", exc)
    if answer is not None:
        if not answer.get("ok"):
            print(f"error: {answer.get('error')}", file=sys.stderr)
            return 1
        event = event_from_plain(answer["event"])
        published = bool(answer.get("published"))
    else:
        event, published = asyncio.run(_in_process(config, observations, args.wait, intake))
    if args.json:
        print(
            json.dumps({"published": published, "event": event_to_plain(event)}, ensure_ascii=False)
        )
    else:
        print_event(event, console=Console(), published=published)
        print(event.event_id)
    return 0


async def _in_process(
    config: AgentConfig, observations: list[str], wait: float, intake: dict[str, str]
) -> Any:
    from edge_agent.station.agent import StationAgent

    consignor = None
    if "consignor_name" in intake or "consignor_uscc" in intake:
        consignor = Consignor(name=intake.get("consignor_name"), uscc=intake.get("consignor_uscc"))
    async with StationAgent(config) as agent:
        result = await agent.identify(
            observations=tuple(observations),
            consignor=consignor,
            technician=intake.get("technician"),
        )
        published = await agent.wait_published(result.event.event_id, wait)
        return result.event, published.delivered
