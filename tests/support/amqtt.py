"""amqtt, an MQTT 3.1.1-only broker, for the MQTT 5 -> 3.1.1 fallback tests.

Usage::

    from tests.support.amqtt import amqtt_broker  # fixture: the port of a started broker
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_real_part
from tests.support.mosquitto import free_port


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), 0.2):
            return True
    except OSError:
        return False


def _wait(pred: object, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def amqtt_broker(tmp_path: Path) -> Iterator[int]:
    """amqtt (an MQTT 3.1.1-only broker) on a free port, as a subprocess."""
    exe = Path(sys.executable).with_name("amqtt")
    require_real_part(exe.exists(), "amqtt broker")
    port = free_port()
    conf = tmp_path / "amqtt.yaml"
    conf.write_text(
        f"listeners:\n  default:\n    type: tcp\n    bind: 127.0.0.1:{port}\n"
        "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n    allow_anonymous: true\n"
    )
    proc = subprocess.Popen(
        [str(exe), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        assert _wait(lambda: _port_open(port), 20), "amqtt did not start"
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
