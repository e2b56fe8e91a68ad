"""Minimal MQTT 3.1.1 client with the ``umqtt.simple`` API (tests only, never shipped).

micropython-lib's umqtt.simple cannot be fetched offline here, so the host tests use this
stand-in with the same method names; it speaks the real protocol to a real Mosquitto. Boards use
the genuine umqtt.simple (frozen on ESP32, ``mpremote mip install umqtt.simple`` elsewhere).
"""

import socket
import struct


class MQTTException(Exception):
    pass


def _str(b):
    return struct.pack("!H", len(b)) + b


def _varlen(n):
    out = bytearray()
    while True:
        d = n & 0x7F
        n >>= 7
        out.append(d | (0x80 if n else 0))
        if not n:
            return bytes(out)


class MQTTClient:
    def __init__(self, client_id, server, port=1883, keepalive=0):
        self.client_id = client_id if isinstance(client_id, bytes) else client_id.encode()
        self.server = server
        self.port = port
        self.keepalive = keepalive
        self.sock = None
        self.cb = None
        self.will = None
        self.pid = 0

    def set_callback(self, f):
        self.cb = f

    def set_last_will(self, topic, msg, retain=False, qos=0):
        self.will = (topic, msg, retain, qos)

    def _recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise OSError(-1)
            buf += chunk
        return buf

    def _packet(self, kind, body):
        self.sock.write(bytes([kind]) + _varlen(len(body)) + body)

    def _read_len(self):
        n = 0
        shift = 0
        while True:
            b = self._recv(1)[0]
            n |= (b & 0x7F) << shift
            if not b & 0x80:
                return n
            shift += 7

    def connect(self, clean_session=True):
        addr = socket.getaddrinfo(self.server, self.port)[0][-1]
        self.sock = socket.socket()
        self.sock.settimeout(2)
        try:
            self.sock.connect(addr)
        except OSError:
            self.sock.close()
            self.sock = None
            raise
        flags = 0x02 if clean_session else 0
        payload = _str(self.client_id)
        if self.will:
            t, m, r, q = self.will
            flags |= 0x04 | (q << 3) | (0x20 if r else 0)
            payload += _str(t) + _str(m)
        self._packet(
            0x10, _str(b"MQTT") + bytes([4, flags]) + struct.pack("!H", self.keepalive) + payload
        )
        if self._recv(1)[0] != 0x20 or self._read_len() != 2:
            raise MQTTException("connack")
        rc = self._recv(2)[1]
        if rc:
            raise MQTTException(rc)
        return False

    def disconnect(self):
        if self.sock is None:
            return
        try:
            self._packet(0xE0, b"")
        finally:
            self.sock.close()
            self.sock = None

    def ping(self):
        self._packet(0xC0, b"")

    def publish(self, topic, msg, retain=False, qos=0):
        self._packet(0x30 | (1 if retain else 0), _str(topic) + msg)

    def subscribe(self, topic, qos=0):
        self.pid += 1
        self._packet(0x82, struct.pack("!H", self.pid) + _str(topic) + bytes([qos]))
        while True:
            if self._wait_msg() == 0x90:
                return

    def _wait_msg(self):
        kind = self._recv(1)[0]
        n = self._read_len()
        body = self._recv(n) if n else b""
        if kind & 0xF0 == 0x30:
            tl = struct.unpack("!H", body[:2])[0]
            topic = body[2 : 2 + tl]
            rest = body[2 + tl :]
            if kind & 0x06:
                rest = rest[2:]  # packet id of QoS > 0
            if self.cb:
                self.cb(topic, rest)
        return kind & 0xF0

    def check_msg(self):
        self.sock.setblocking(False)
        try:
            first = self.sock.recv(1)
        except OSError:
            first = None
        self.sock.settimeout(2)
        if first is None:
            return None
        if first == b"":
            raise OSError(-1)
        # put the byte back in front of the stream by handling it here
        kind = first[0]
        n = self._read_len()
        body = self._recv(n) if n else b""
        if kind & 0xF0 == 0x30 and self.cb:
            tl = struct.unpack("!H", body[:2])[0]
            self.cb(body[2 : 2 + tl], body[2 + tl :])
        return kind & 0xF0
