"""A broker that never sends PUBACK (Mosquitto cannot be made to do this, so a minimal
scripted MQTT 3.1.1 peer stands in): the row is published again after ack_timeout_s and
stays in the outbox."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from pathlib import Path

from edge_agent.uplink.outbox import Outbox
from edge_agent.uplink.publisher import OutboxPublisher
from edge_agent.uplink.settings import MqttSettings


class SilentBroker:
    """Accepts one MQTT 3.1.1 client, answers CONNACK and PINGREQ, never acknowledges."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.payloads: Counter[bytes] = Counter()
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _read_exact(self, conn: socket.socket, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise ConnectionError
            data += chunk
        return data

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            try:
                while True:
                    head = self._read_exact(conn, 1)[0]
                    length, shift = 0, 0
                    while True:  # remaining length, variable byte integer
                        byte = self._read_exact(conn, 1)[0]
                        length |= (byte & 0x7F) << shift
                        shift += 7
                        if not byte & 0x80:
                            break
                    body = self._read_exact(conn, length)
                    kind = head >> 4
                    if kind == 1:  # CONNECT
                        conn.sendall(b"\x20\x02\x00\x00")
                    elif kind == 12:  # PINGREQ
                        conn.sendall(b"\xd0\x00")
                    elif kind == 3:  # PUBLISH: topic, packet id (QoS 1), payload
                        tlen = int.from_bytes(body[:2], "big")
                        payload = body[2 + tlen + 2 :]
                        with self.cond:
                            self.payloads[payload] += 1
                            self.cond.notify_all()
                    elif kind == 14:  # DISCONNECT
                        return
            except (ConnectionError, OSError):
                return

    def wait_count(self, payload: bytes, n: int, timeout: float) -> bool:
        end = time.monotonic() + timeout
        with self.cond:
            while self.payloads[payload] < n:
                if not self.cond.wait(max(0.0, end - time.monotonic())):
                    return False
        return True

    def close(self) -> None:
        self.sock.close()


def test_unacknowledged_publish_is_sent_again_and_kept(tmp_path: Path) -> None:
    broker = SilentBroker()
    outbox = Outbox(tmp_path / "o.db")
    settings = MqttSettings(host="127.0.0.1", port=broker.port, protocol="3.1.1", ack_timeout_s=1.0)
    pub = OutboxPublisher(outbox, settings, client_id="silent")
    pub.start()
    try:
        outbox.add("battrace/v1/s/b/event", b"never-acked", "k")
        pub.enqueue([])  # wake the drainer
        assert broker.wait_count(b"never-acked", 1, 10)
        assert broker.wait_count(b"never-acked", 2, 10)  # re-sent after ack_timeout_s
        assert outbox.depth == 1  # still stored: only a PUBACK deletes
        assert outbox.rows()[0].attempts >= 1
    finally:
        pub.stop(timeout=2)
        broker.close()
        outbox.close()
