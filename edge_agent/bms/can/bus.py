"""Opening python-can buses (live or replayed from a log file) and reading them from asyncio.

One ``BusSession`` owns one bus and its single ``Notifier`` (two notifiers on one bus split
the messages, python-can #1888); methods attach and detach their own ``FrameQueue``
listeners. Closing stops the notifier before shutting the bus down, so no reader thread
outlives the session.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import can

from edge_agent.bms.settings import CanSettings
from edge_agent.errors import BusError

log = logging.getLogger(__name__)

LOG_SUFFIXES = (".log", ".asc", ".blf", ".csv", ".trc")


class ReplayBus(can.BusABC):  # type: ignore[misc]
    """A bus that yields the frames of a python-can log file as fast as they are read.

    Sends are accepted and dropped (the recorded peer cannot hear them); ``exhausted``
    turns true once the file has been read to the end.
    """

    def __init__(self, path: str | Path, **kwargs: Any) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise BusError(f"replay file not found: {self.path}")
        try:
            self._reader = can.LogReader(str(self.path))
            self._frames: Iterator[can.Message] = iter(self._reader)
        except (ValueError, OSError) as exc:
            raise BusError(f"cannot replay {self.path}: {exc}") from None
        self.exhausted = False
        self.channel_info = f"replay:{self.path.name}"
        super().__init__(channel=str(self.path), **kwargs)

    def _recv_internal(self, timeout: float | None) -> tuple[can.Message | None, bool]:
        if not self.exhausted:
            try:
                return next(self._frames), False
            except StopIteration:
                self.exhausted = True
            except Exception as exc:  # a corrupt log line must not kill the notifier thread
                log.warning("replay %s: unreadable record skipped: %s", self.path, exc)
                return None, False
        time.sleep(min(timeout or 0.0, 0.02))
        return None, False

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        """Drop the frame: a recording cannot answer."""

    def shutdown(self) -> None:
        """Close the log file."""
        super().shutdown()
        stop = getattr(self._reader, "stop", None)
        if stop is not None:
            stop()


def open_bus(settings: CanSettings) -> can.BusABC:
    """Open the configured bus (or the replay file); BusError when it cannot be opened."""
    if settings.replay:
        return ReplayBus(settings.replay)
    kwargs: dict[str, Any] = {
        "interface": settings.interface,
        "channel": settings.channel,
        "bitrate": settings.bitrate,
    }
    if settings.interface == "slcan":
        kwargs["tty_baudrate"] = settings.tty_baudrate
        if settings.open_delay_s is not None:
            kwargs["sleep_after_open"] = settings.open_delay_s
    if settings.interface == "virtual":
        kwargs.pop("bitrate")
        kwargs["receive_own_messages"] = False
    try:
        return can.Bus(**kwargs)
    except (can.CanError, OSError, ValueError, ImportError) as exc:
        raise BusError(
            f"cannot open CAN bus {settings.interface}:{settings.channel} "
            f"at {settings.bitrate} bit/s: {exc}"
        ) from None


class FrameQueue(can.Listener):  # type: ignore[misc]
    """A listener that hands frames (and bus errors) to one asyncio consumer."""

    def __init__(self, loop: asyncio.AbstractEventLoop, ids: frozenset[int] | None = None) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[can.Message | BaseException] = asyncio.Queue()
        self._ids = ids

    def on_message_received(self, msg: can.Message) -> None:
        """Called in the notifier's context (loop thread or reader thread)."""
        if self._ids is not None and msg.arbitration_id not in self._ids:
            return
        self._put(msg)

    def on_error(self, exc: Exception) -> None:
        """A bus error ends the notifier thread: pass it to the consumer."""
        self._put(exc)

    def _put(self, item: can.Message | BaseException) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._queue.put_nowait(item)
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    async def get(self, timeout: float) -> can.Message | None:
        """Next frame within ``timeout`` seconds, None on silence; BusError on a bus failure."""
        try:
            item = await asyncio.wait_for(self._queue.get(), max(0.0, timeout))
        except TimeoutError:
            return None
        if isinstance(item, BaseException):
            raise BusError(f"CAN bus failed: {item}") from None
        return item


class Recorder(can.Listener):
    """Write every frame of one bus to a python-can log, without the bus's channel name.

    A recording holds one bus, and log formats store the channel as a small number parsed
    from the name's trailing digits (BLF packs it into 16 bits): a channel called
    ``test-1a2b99999`` or ``can70000`` would fail every write. Frames are copied, so the
    other listeners still see the channel they were sent on.
    """

    def __init__(self, path: Path) -> None:
        self._writer: Any = can.Logger(str(path))

    def on_message_received(self, msg: can.Message) -> None:
        """Write a copy of ``msg`` with no channel (the log's default channel is used)."""
        copy = can.Message(
            timestamp=msg.timestamp,
            arbitration_id=msg.arbitration_id,
            is_extended_id=msg.is_extended_id,
            is_remote_frame=msg.is_remote_frame,
            is_error_frame=msg.is_error_frame,
            dlc=msg.dlc,
            data=msg.data,
            is_fd=msg.is_fd,
            is_rx=msg.is_rx,
            bitrate_switch=msg.bitrate_switch,
            error_state_indicator=msg.error_state_indicator,
            check=False,
        )
        self._writer.on_message_received(copy)

    def stop(self) -> None:
        """Flush and close the log."""
        self._writer.stop()


class BusSession:
    """One open bus, its notifier and a send helper; use as an async context manager."""

    def __init__(
        self, settings: CanSettings, bus: can.BusABC | None = None, *, record: Path | None = None
    ) -> None:
        self.settings = settings
        self.record = record
        self._recorder: Recorder | None = None
        self._own_bus = bus is None
        self.bus: can.BusABC | None = bus
        self.notifier: can.Notifier | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    @property
    def replay(self) -> bool:
        """True when frames come from a recording (nobody answers our requests)."""
        return isinstance(self.bus, ReplayBus)

    @property
    def exhausted(self) -> bool:
        """True when a replayed recording has been read to its end."""
        return isinstance(self.bus, ReplayBus) and self.bus.exhausted

    async def open(self) -> BusSession:
        """Open the bus (unless given) and start the notifier."""
        self.loop = asyncio.get_running_loop()
        if self.bus is None:
            self.bus = open_bus(self.settings)
        listeners: list[Any] = []
        if self.record is not None:
            try:
                self._recorder = Recorder(self.record)
            except (ValueError, OSError) as exc:
                self.bus.shutdown()
                raise BusError(f"cannot record to {self.record}: {exc}") from None
            listeners.append(self._recorder)
        self.notifier = can.Notifier(self.bus, listeners, timeout=0.05, loop=self.loop)
        return self

    async def close(self) -> None:
        """Stop the notifier, then shut the bus down (if we opened it)."""
        if self.notifier is not None:
            self.notifier.stop(timeout=2.0)  # also stops (flushes and closes) the recorder
            self.notifier = None
            self._recorder = None
        if self.bus is not None and self._own_bus:
            try:
                self.bus.shutdown()
            except (can.CanError, OSError) as exc:
                log.warning("bus shutdown: %s", exc)
            self.bus = None

    async def __aenter__(self) -> BusSession:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def listen(self, ids: frozenset[int] | None = None) -> FrameQueue:
        """Attach a new frame queue (optionally filtered by arbitration id)."""
        assert self.notifier is not None and self.loop is not None, "session not open"
        queue = FrameQueue(self.loop, ids)
        self.notifier.add_listener(queue)
        return queue

    def unlisten(self, queue: FrameQueue) -> None:
        """Detach a frame queue."""
        if self.notifier is not None and queue in self.notifier.listeners:
            self.notifier.remove_listener(queue)

    def send(self, can_id: int, data: bytes, *, extended: bool = True) -> None:
        """Transmit one frame; BusError when the bus refuses it."""
        assert self.bus is not None, "session not open"
        msg = can.Message(arbitration_id=can_id, data=data, is_extended_id=extended)
        try:
            self.bus.send(msg, timeout=0.2)
        except (can.CanError, OSError) as exc:
            raise BusError(f"cannot send frame {can_id:#x}: {exc}") from None
        if self._recorder is not None:  # our own frames belong in the recording too
            msg.timestamp = time.time()
            msg.is_rx = False
            self._recorder(msg)
