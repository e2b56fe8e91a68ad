"""Real parts for self-test tests: Mosquitto with a password file, a pymodbus TCP server,
a python-can virtual bus with a sender, a folder of camera images, a signing key dir."""

from __future__ import annotations

import asyncio
import os
import pwd
import select
import shutil
import socket
import subprocess
import threading
import time
import tty
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import can
import cv2
import numpy as np
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import ModbusSerialServer, ModbusTcpServer

from tests.conftest import require_real_part

MOSQUITTO = Path("/usr/sbin/mosquitto")
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, timeout_s: float = 20.0) -> None:
    """Block until something accepts TCP connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {port}") from None
            time.sleep(0.02)


@dataclass
class Broker:
    """A running Mosquitto: where it listens and the account it accepts."""

    host: str
    port: int
    username: str
    password: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        """Terminate and reap the broker."""
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@contextmanager
def mosquitto(tmp: Path) -> Iterator[Broker]:
    """Mosquitto on a free loopback port, anonymous off, one user from a password file."""
    require_real_part(
        MOSQUITTO.exists() and MOSQUITTO_PASSWD is not None, "mosquitto + mosquitto_passwd"
    )
    assert MOSQUITTO_PASSWD is not None
    tmp.mkdir(parents=True, exist_ok=True)
    passwd = tmp / "passwd"
    subprocess.run(
        [MOSQUITTO_PASSWD, "-b", "-c", str(passwd), "station", "s3cret"], check=True, timeout=30
    )
    passwd.chmod(0o600)
    port = free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(
        # `user`: as root mosquitto would switch to "mosquitto", which cannot read pytest's tmp dir.
        f"user {pwd.getpwuid(os.geteuid()).pw_name}\nlistener {port} 127.0.0.1\n"
        f"allow_anonymous false\npassword_file {passwd}\npersistence false\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [str(MOSQUITTO), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    broker = Broker(
        host="127.0.0.1", port=port, username="station", password="s3cret", process=proc
    )
    try:
        wait_listening(port)
        yield broker
    finally:
        broker.stop()


@dataclass
class ModbusServer:
    """A pymodbus TCP server on loopback running in its own event-loop thread."""

    port: int
    device_id: int


HOLDING_VALUES = [1000 + i for i in range(64)]


@contextmanager
def modbus_tcp_server(device_id: int = 1) -> Iterator[ModbusServer]:
    """Holding registers 0..63 (values 1000+i as pymodbus addresses them) for one device id."""
    port = free_port()
    block = ModbusSequentialDataBlock(1, HOLDING_VALUES)  # pymodbus: block address 1 = register 0
    context = ModbusServerContext(devices={device_id: ModbusDeviceContext(hr=block)}, single=False)
    loop = asyncio.new_event_loop()
    holder: list[ModbusTcpServer] = []
    ready = threading.Event()

    async def serve() -> None:
        # pymodbus binds its transport to the running loop, so build the server inside it.
        server = ModbusTcpServer(context, address=("127.0.0.1", port))
        holder.append(server)
        ready.set()
        await server.serve_forever()

    thread = threading.Thread(
        target=loop.run_until_complete, args=(serve(),), name="modbus-server", daemon=True
    )
    thread.start()
    try:
        assert ready.wait(10)
        wait_listening(port)
        yield ModbusServer(port=port, device_id=device_id)
    finally:
        asyncio.run_coroutine_threadsafe(holder[0].shutdown(), loop).result(timeout=10)
        thread.join(timeout=10)
        loop.close()


@contextmanager
def pty_null_modem() -> Iterator[tuple[str, str]]:
    """Two raw pty devices wired back to back (what one end writes the other reads)."""
    m1, s1 = os.openpty()
    m2, s2 = os.openpty()
    for fd in (s1, s2):
        tty.setraw(fd)
    stop = threading.Event()

    def pump() -> None:
        while not stop.is_set():
            ready, _, _ = select.select([m1, m2], [], [], 0.05)
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    continue
                os.write(m2 if fd == m1 else m1, data)

    thread = threading.Thread(target=pump, name="pty-null-modem", daemon=True)
    thread.start()
    try:
        yield os.ttyname(s1), os.ttyname(s2)
    finally:
        stop.set()
        thread.join(timeout=5)
        for fd in (m1, s1, m2, s2):
            os.close(fd)


@contextmanager
def modbus_rtu_server(port: str, device_id: int = 1, baudrate: int = 19200) -> Iterator[None]:
    """The same holding registers as modbus_tcp_server, served as Modbus RTU on a serial port."""
    block = ModbusSequentialDataBlock(1, HOLDING_VALUES)
    context = ModbusServerContext(devices={device_id: ModbusDeviceContext(hr=block)}, single=False)
    loop = asyncio.new_event_loop()
    holder: list[ModbusSerialServer] = []
    ready = threading.Event()

    async def serve() -> None:
        server = ModbusSerialServer(context, port=port, baudrate=baudrate)
        holder.append(server)
        ready.set()
        await server.serve_forever()

    thread = threading.Thread(
        target=loop.run_until_complete, args=(serve(),), name="modbus-rtu", daemon=True
    )
    thread.start()
    try:
        assert ready.wait(10)
        yield
    finally:
        asyncio.run_coroutine_threadsafe(holder[0].shutdown(), loop).result(timeout=10)
        thread.join(timeout=10)
        loop.close()


@contextmanager
def can_sender(channel: str, period_s: float = 0.01) -> Iterator[None]:
    """Send BMS-like frames on a python-can virtual channel until the block ends."""
    bus = can.Bus(interface="virtual", channel=channel)
    stop = threading.Event()

    def send() -> None:
        n = 0
        while not stop.is_set():
            bus.send(
                can.Message(
                    arbitration_id=0x180 + n % 3, data=bytes([n % 256] * 8), is_extended_id=False
                )
            )
            n += 1
            stop.wait(period_s)

    thread = threading.Thread(target=send, name="can-sender", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        bus.shutdown()


def unique_channel() -> str:
    """A virtual CAN channel name no other test uses."""
    return f"selftest-{uuid.uuid4().hex[:10]}"


def label_image(path: Path, *, blur: int = 0) -> Path:
    """A sharp, well-exposed label-like image (optionally blurred) written with OpenCV."""
    img = np.full((480, 640, 3), 200, dtype=np.uint8)
    for y in range(60, 420, 40):
        for x in range(80, 560, 40):
            if (x // 40 + y // 40) % 2 == 0:
                cv2.rectangle(img, (x, y), (x + 39, y + 39), (20, 20, 20), -1)
    cv2.putText(
        img, "014PCBCS0000001A1234567", (30, 460), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 0, 0), 2
    )
    if blur:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)
    return path


def key_dir(path: Path) -> Path:
    """A station key pair with safe permissions (dir 0700, private key 0600)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    key = Ed25519PrivateKey.generate()
    priv = path / "station.key.pem"
    priv.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    priv.chmod(0o600)
    (path / "station.pub.pem").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def fake_sysfs_can(root: Path, ifname: str, *, operstate: str = "up") -> Path:
    """A /sys lookalike with class/net/<ifname>/operstate (no kernel CAN interfaces here)."""
    net = root / "class" / "net" / ifname
    net.mkdir(parents=True, exist_ok=True)
    (net / "operstate").write_text(operstate + "\n", encoding="ascii")
    (net / "type").write_text("280\n", encoding="ascii")  # ARPHRD_CAN
    return root


def ip_link_can_json(ifname: str, bitrate: int, state: str = "ERROR-ACTIVE") -> str:
    """`ip -details -json link show` output of an mcp251x interface (shape of iproute2 6.x)."""
    return (
        f'[{{"ifindex":3,"ifname":"{ifname}","flags":["NOARP","UP","LOWER_UP","ECHO"],"mtu":16,'
        '"qdisc":"pfifo_fast","operstate":"UP","linkmode":"DEFAULT","group":"default","txqlen":10,'
        '"link_type":"can","promiscuity":0,"min_mtu":0,"max_mtu":0,"linkinfo":{"info_kind":"can",'
        f'"info_data":{{"ctrlmode":[],"state":"{state}","berr_counter":{{"tx":0,"rx":0}},'
        '"restart_ms":100,"bittiming":{'
        f'"bitrate":{bitrate},"sample_point":"0.875","tq":250,"prop_seg":6,"phase_seg1":7,'
        '"phase_seg2":2,"sjw":1,"brp":2},"bittiming_const":{"name":"mcp251x","tseg1":{"min":3,'
        '"max":16},"tseg2":{"min":2,"max":8},"sjw":{"min":1,"max":4},"brp":{"min":1,"max":64},'
        '"brp_inc":1},"clock":8000000}},"num_tx_queues":1,"num_rx_queues":1,"gso_max_size":65536,'
        '"gso_max_segs":65535,"parentbus":"spi","parentdev":"spi0.0"}]'
    )


def owner_only(path: Path) -> bool:
    """True when the file is mode 0600 (helper for assertions)."""
    return (os.stat(path).st_mode & 0o777) == 0o600
