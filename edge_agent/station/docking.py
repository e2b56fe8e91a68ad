"""One docking, one identification: dock triggers merged into dockings (pure state machine).

The first trigger of a docking starts the identification at once: the window adds no waiting.
Later triggers join that docking while they fall within ``window_s`` of its first trigger or
while its identification still runs, until an undock (dock switch open, weight gone) ends it;
the next dock trigger then starts a new docking. BMS traffic has no undock of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Action = Literal["start", "join", "undock", "ignore"]


@dataclass(frozen=True, kw_only=True)
class DockSignal:
    """One trigger from the bench: its kind and whether it says a pack is there."""

    kind: str  # "dock_switch", "weight", "bms_traffic"
    docked: bool


class Docking:
    """Decides, trigger by trigger, whether an identification starts or a docking goes on."""

    def __init__(self, *, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._active = False
        self._started_at = 0.0
        self.count = 0  # dockings started

    @property
    def active(self) -> bool:
        """True between a docking's first trigger and its undock."""
        return self._active

    def on_signal(self, signal: DockSignal, *, running: bool) -> Action:
        """What to do with ``signal``; ``running``: the docking's identification still runs."""
        now = self._clock()
        if not signal.docked:
            if self._active:
                self._active = False
                return "undock"
            return "ignore"
        if self._active and (running or now - self._started_at <= self.window_s):
            return "join"
        self._active, self._started_at = True, now
        self.count += 1
        return "start"
