"""The station service behind ``edge-agent run``: dock triggers, control socket, watchdog."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any

from rich.console import Console

from edge_agent.errors import EdgeAgentError, StationError
from edge_agent.event_codec import event_to_plain
from edge_agent.model import Consignor
from edge_agent.sd_notify import Notifier, keep_alive
from edge_agent.station.agent import StationAgent
from edge_agent.station.control import serve_control, socket_path
from edge_agent.station.settings import StationConfig
from edge_agent.station.view import print_event
from edge_agent.station.workflow import StationSources

log = logging.getLogger(__name__)
# on SIGTERM, identifications already running may finish (their sources have timeouts) and
# their answers be sent, for at most this long; systemd's default stop timeout is 90 s
STOP_GRACE_S = 30.0


# something that runs beside the service for its lifetime (the kiosk page): entered once the
# agent is open, left before it closes; ``request_identify`` starts an identification the way
# the control socket does
Attachment = Callable[
    [StationAgent, Callable[[], Awaitable[Any]]], AbstractAsyncContextManager[Any]
]


async def run_service(
    config: StationConfig,
    *,
    console: Console | None = None,
    attachments: Sequence[Attachment] = (),
    sources: StationSources | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Serve identifications until SIGTERM/SIGINT (or ``stop`` is set); the exit status."""
    console = console or Console()
    notifier = Notifier.from_environment()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with StationAgent(config, sources=sources) as agent, AsyncExitStack() as extras:
        busy: set[asyncio.Task[Any]] = set()  # requests and identifications to let finish

        async def identify_request(request: dict[str, Any]) -> dict[str, Any]:
            if stop.is_set():
                raise StationError("the station is shutting down; try again when it is back")
            task = asyncio.current_task()
            assert task is not None
            busy.add(task)  # the control connection's task: answer included
            task.add_done_callback(busy.discard)
            consignor = None
            if request.get("consignor_name") or request.get("consignor_uscc"):
                consignor = Consignor(
                    name=request.get("consignor_name"), uscc=request.get("consignor_uscc")
                )
            # a request while an identification runs (a docking) joins it: the same event
            result = await agent.identify(
                trigger="request",
                observations=tuple(request["observations"]),
                consignor=consignor,
                technician=request.get("technician"),
            )
            wait = 0.0 if stop.is_set() else request["wait_s"]
            published = await agent.wait_published(result.event.event_id, wait)
            print_event(result.event, console=console, published=published.delivered)
            return {
                "ok": True,
                "event_id": result.event.event_id,
                "published": published.delivered,
                "event": event_to_plain(result.event),
            }

        async def scale_request(request: dict[str, Any]) -> dict[str, Any]:
            # the service owns the node link: tare and calibration go through it
            if agent.nodes is None:
                raise StationError("this station has no scale node (nodes.ports is empty)")
            ack = await agent.nodes.find("scale").command(
                request["command"], request["args"], timeout=config.nodes.command_timeout_s
            )
            return {"ok": True, "ack": {"ok": ack.ok, "result": ack.result, "cfg": ack.cfg}}

        async def rotate_request(request: dict[str, Any]) -> dict[str, Any]:
            started = await agent.rotate_key(alg=request["alg"], overlap_s=request["overlap_s"])
            return {
                "ok": True,
                "rotation_id": started.rotation_id,
                "old_kid": started.old_kid,
                "new_kid": started.new_kid,
                "switched": started.switched,
            }

        def report(job: asyncio.Task[Any]) -> None:
            if job.cancelled():
                return
            exc = job.exception()
            if isinstance(exc, EdgeAgentError):
                log.error("identification refused: %s", exc)
                console.print(f"[bold red]identification refused:[/] {exc}")
            elif exc is not None:  # a bug must not stop the bench from serving the next pack
                log.error("identification failed", exc_info=exc)
                console.print("[bold red]identification failed; see the log[/]")
            else:
                print_event(job.result().event, console=console, published=None)

        async def dock_loop() -> None:
            # one docking, one identification: the first trigger starts it at once (the loop
            # never waits for it, so later triggers are judged when they happen), later ones
            # join it within the window or while it runs, until an undock
            from edge_agent.station.docking import Docking

            docking = Docking(window_s=config.station.dock.merge_window_s)
            async for signal_ in agent.dock_triggers():
                action = docking.on_signal(signal_, running=agent.identifying)
                log.info("dock trigger %s docked=%s: %s", signal_.kind, signal_.docked, action)
                if action != "start":
                    continue
                console.print(f"docked ({signal_.kind}): identifying")
                # a docking while a requested identification runs joins it: one event
                start_job(signal_.kind)

        def start_job(trigger: str) -> asyncio.Task[Any]:
            # observations and the technician entered at the bench go with this docking
            job = asyncio.create_task(
                agent.identify(
                    trigger=trigger,
                    observations=agent.bench.take(),
                    technician=agent.bench.technician,
                )
            )
            busy.add(job)
            job.add_done_callback(busy.discard)
            job.add_done_callback(report)
            return job

        async def bench_identify() -> Any:
            if stop.is_set():
                raise StationError("the station is shutting down; try again when it is back")
            if agent.identifying:
                return None
            return start_job("request")

        for attach in attachments:  # before the socket: a refused attachment stops the start
            await extras.enter_async_context(attach(agent, bench_identify))
        path = socket_path(config.station.data_dir)
        server = await serve_control(
            path, identify_request, scale=scale_request, rotate=rotate_request
        )
        tasks = [
            asyncio.create_task(dock_loop(), name="dock-loop"),
            asyncio.create_task(keep_alive(notifier), name="watchdog"),
        ]
        notifier.ready(status=f"station {config.station.station} ready")
        console.print(
            f"station [bold]{config.station.station}[/] @ {config.station.site} ready; "
            f"dock a pack or run `edge-agent identify` (control socket {path})"
        )
        await stop.wait()
        notifier.stopping()
        server.close()  # no new requests; running ones finish within the grace period
        if busy:
            log.info("waiting for %d running identification(s) before stopping", len(busy))
            _, late = await asyncio.wait(set(busy), timeout=STOP_GRACE_S)
            for task in late:
                task.cancel()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return 0
