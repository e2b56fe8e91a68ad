"""The gateway service under a systemd-notify harness (a bound $NOTIFY_SOCKET, real Mosquitto
for both brokers): READY=1 once both brokers are connected, WATCHDOG=1 while the worker runs,
none while it is stuck or dead, STOPPING=1 on SIGTERM."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import pytest

from edge_agent.gateway.pipeline import Gateway
from edge_agent.gateway.service import GatewayService
from edge_agent.gateway.site import SiteMessage
from edge_agent.sd_notify import Notifier
from tests.support.gateway import GatewayProcess, Rig, gateway_config_file, wait_until
from tests.support.sd_notify import NotifyListener

pytestmark = pytest.mark.timeout(180)

READY = b"READY=1"
PING = b"WATCHDOG=1"


def test_process_ready_after_both_brokers_then_watchdog(rig: Rig, tmp_path: Path) -> None:
    rig.upstream.kill()  # the site broker is up, the upstream one not yet
    config = gateway_config_file(rig.workdir / "gateway.toml", rig.settings())
    with NotifyListener(tmp_path / "notify.sock") as systemd:
        # WatchdogSec=0.4: a ping every 0.2 s
        gw = GatewayProcess(
            config, rig.workdir / "gateway.log", env=systemd.environ(watchdog_usec=400_000)
        )
        gw.start()
        try:
            # the worker runs, so the watchdog is fed, but only one broker is connected
            assert systemd.wait_for(lambda got: got.count(PING) >= 3, 60), gw.log.read_text()
            assert READY not in systemd.fields()
            rig.upstream.start()
            assert systemd.wait_for(lambda got: READY in got, 60), gw.log.read_text()
            after = systemd.fields().index(READY)
            assert systemd.wait_for(lambda got: got[after:].count(PING) >= 3, 30)
            assert systemd.count(READY) == 1
            assert gw.terminate() == 0
            assert systemd.wait_for(lambda got: b"STOPPING=1" in got, 10)
        finally:
            gw.kill()
    status = [f for f in systemd.fields() if f.startswith(b"STATUS=")]
    assert status and status[-1].startswith(b"STATUS=forwarding 127.0.0.1:")


class _GatedInbox:
    """The site inbox with a gate: closed, the worker blocks in get(); ``fail`` kills it."""

    def __init__(self, inner: queue.SimpleQueue[SiteMessage]) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.gate.set()
        self.fail = False

    def put(self, item: SiteMessage) -> None:
        self.inner.put(item)

    def get(self, timeout: float | None = None) -> SiteMessage:
        self.gate.wait()
        if self.fail:
            raise RuntimeError("worker killed by the test")
        return self.inner.get(timeout=timeout)

    def get_nowait(self) -> SiteMessage:
        return self.inner.get_nowait()


@pytest.mark.parametrize("fault", ["stuck", "dead"])
def test_no_watchdog_while_the_worker_is_stuck_or_dead(
    rig: Rig, tmp_path: Path, fault: str
) -> None:
    gateway = Gateway(rig.settings())
    inbox = _GatedInbox(gateway.site.inbox)
    gateway.site.inbox = inbox  # type: ignore[assignment]
    stop = threading.Event()
    with NotifyListener(tmp_path / "notify.sock") as systemd:
        service = GatewayService(
            gateway, Notifier(str(systemd.path), watchdog_usec=100_000), stall_s=0.5
        )
        runner = threading.Thread(target=service.run, args=(stop,), name="test-gateway-service")
        gateway.start()
        runner.start()
        try:
            assert systemd.wait_for(lambda got: READY in got and got.count(PING) >= 3, 30)
            inbox.fail = fault == "dead"
            inbox.gate.clear()  # the worker blocks in its next get() (or dies in it)
            assert wait_until(lambda: not service.healthy, 30)
            pings, turns = systemd.count(PING), service.turns
            # the service keeps looking (every 50 ms) but sends no ping
            assert wait_until(lambda: service.turns >= turns + 5, 30)
            assert systemd.count(PING) == pings
            if fault == "stuck":
                inbox.gate.set()  # unstuck: pings resume
                assert systemd.wait_for(lambda got: got.count(PING) > pings, 30)
                # a busy machine may leave the worker unscheduled past stall_s again: wait
                assert wait_until(lambda: service.healthy, 30)
        finally:
            inbox.fail = False
            inbox.gate.set()
            stop.set()
            runner.join(10)
            gateway.stop()
    assert systemd.fields()[-1] == b"STOPPING=1"
