"""One docking, one identification: the dock-trigger state machine."""

from __future__ import annotations

from edge_agent.station.docking import Docking, DockSignal

SWITCH_ON = DockSignal(kind="dock_switch", docked=True)
SWITCH_OFF = DockSignal(kind="dock_switch", docked=False)
WEIGHT_ON = DockSignal(kind="weight", docked=True)
WEIGHT_OFF = DockSignal(kind="weight", docked=False)
TRAFFIC = DockSignal(kind="bms_traffic", docked=True)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_switch_and_weight_of_one_docking_give_one_start() -> None:
    clock = Clock()
    docking = Docking(window_s=10.0, clock=clock)
    assert docking.on_signal(SWITCH_ON, running=False) == "start"  # at once, no waiting
    clock.now += 2.0
    assert docking.on_signal(WEIGHT_ON, running=True) == "join"
    clock.now += 30.0
    assert docking.on_signal(TRAFFIC, running=True) == "join"  # still identifying
    assert docking.count == 1


def test_undock_then_dock_starts_a_new_identification() -> None:
    clock = Clock()
    docking = Docking(window_s=10.0, clock=clock)
    assert docking.on_signal(SWITCH_ON, running=False) == "start"
    assert docking.on_signal(WEIGHT_ON, running=True) == "join"
    clock.now += 1.0
    assert docking.on_signal(SWITCH_OFF, running=True) == "undock"
    assert docking.on_signal(WEIGHT_OFF, running=True) == "ignore"  # already undocked
    assert docking.on_signal(WEIGHT_ON, running=True) == "start"  # a new docking, even now
    assert docking.count == 2


def test_a_trigger_after_the_window_and_the_identification_starts_again() -> None:
    clock = Clock()
    docking = Docking(window_s=5.0, clock=clock)
    assert docking.on_signal(TRAFFIC, running=False) == "start"
    clock.now += 4.9
    assert docking.on_signal(TRAFFIC, running=False) == "join"  # within the window
    clock.now += 1.0
    assert docking.on_signal(TRAFFIC, running=False) == "start"  # window over, nothing runs


def test_zero_window_merges_only_while_running() -> None:
    clock = Clock()
    docking = Docking(window_s=0.0, clock=clock)
    assert docking.on_signal(SWITCH_ON, running=False) == "start"
    clock.now += 0.5
    assert docking.on_signal(WEIGHT_ON, running=True) == "join"
    clock.now += 0.5
    assert docking.on_signal(WEIGHT_ON, running=False) == "start"
