"""One docking, one identification (issue 14) on the simulated field kit with a real Mosquitto.

Docking the kit's pack closes the dock switch and puts its weight on the scale: two triggers.
The running service must sign one event for them; undocking and docking again signs another.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.signing.events import verify_event
from edge_agent.signing.trust import TrustStore
from tests.support import fieldkit as kit_support
from tests.support.fieldkit import EventCatcher, agent_env
from tests.support.mosquitto import MosquittoBroker

# the field-kit rename (issue 12) calls it running_fieldkit; either name starts the kit
running_kit = getattr(kit_support, "running_fieldkit", None) or kit_support.running_bench
pytestmark = pytest.mark.timeout(240)
SETTLE_S = 6.0  # before the fix the second trigger's event came 2 s after the first


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    b = MosquittoBroker(tmp_path_factory.mktemp("mosquitto"), persistence=False)
    b.start()
    try:
        yield b
    finally:
        b.kill()


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory, broker: MosquittoBroker) -> Iterator[Any]:
    with running_kit(
        tmp_path_factory.mktemp("kit"), "--broker", f"{broker.host}:{broker.port}"
    ) as k:
        yield k


def _dock_events(
    catcher: EventCatcher, trust: TrustStore, boot_epoch: int | None = None
) -> list[Any]:
    """The verified dock-triggered events the catcher holds (of one service run, when given)."""
    events = [verify_event(m, trust).event for m in list(catcher.events)]
    docked = [e for e in events if e.trigger in ("dock_switch", "weight")]
    return [e for e in docked if boot_epoch is None or e.boot_epoch == boot_epoch]


def _wait(what: Any, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)


def test_one_docking_gives_one_event_and_docking_again_another(
    kit: Any, broker: MosquittoBroker, tmp_path: Path
) -> None:
    trust = TrustStore.load(Path(kit.state["trust"]))
    catcher = EventCatcher(broker.host, broker.port)
    out_path = tmp_path / "run.out"
    with open(out_path, "w", encoding="utf-8") as sink:
        service = subprocess.Popen(
            [sys.executable, "-m", "edge_agent", "--config", str(kit.config), "run"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**agent_env(), "COLUMNS": "200"},
        )
    try:
        _wait(lambda: "ready" in out_path.read_text() or service.poll() is not None, 60, out_path)
        assert service.poll() is None, out_path.read_text()
        time.sleep(2.0)  # the service learns the empty scale, so the weight rise is a trigger
        kit.control("dock")  # the node sends the weight rise and the dock switch
        _wait(lambda: _dock_events(catcher, trust), 60, out_path)
        epoch = _dock_events(catcher, trust)[0].boot_epoch
        time.sleep(SETTLE_S)
        assert len(_dock_events(catcher, trust, epoch)) == 1, out_path.read_text()
        kit.control("undock")
        time.sleep(2.0)
        kit.control("dock")
        _wait(lambda: len(_dock_events(catcher, trust, epoch)) >= 2, 60, out_path)
        time.sleep(SETTLE_S)
        events = _dock_events(catcher, trust, epoch)
    finally:
        kit.control("undock")
        catcher.close()
        service.send_signal(signal.SIGTERM)
        rc = service.wait(30)
    assert rc == 0
    assert len(events) == 2, out_path.read_text()
    assert events[0].event_id != events[1].event_id and events[0].seq < events[1].seq
    assert out_path.read_text().count("identifying") == 2
