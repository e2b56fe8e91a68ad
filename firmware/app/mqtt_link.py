"""MQTT transport for Wi-Fi nodes: same framed lines on topics, umqtt.simple with bounded backoff.

Topics: ``<prefix>/<node>/up`` (node -> host), ``<prefix>/<node>/cmd`` (host -> node),
``<prefix>/<node>/status`` (retained "online"; the Last Will sets "offline").
"""

import time

from nodeproto import LineReader


class Backoff:
    """Exponential reconnect delay between ``lo_ms`` and ``hi_ms``; never blocks the caller."""

    def __init__(self, lo_ms=500, hi_ms=30000):
        self.lo = lo_ms
        self.hi = hi_ms
        self.delay = 0
        self.next_at = time.ticks_ms()

    def due(self):
        """True when the next attempt may run."""
        return time.ticks_diff(time.ticks_ms(), self.next_at) >= 0

    def failed(self):
        """Record a failed attempt and schedule the next one."""
        self.delay = self.lo if self.delay == 0 else min(self.delay * 2, self.hi)
        self.next_at = time.ticks_add(time.ticks_ms(), self.delay)

    def succeeded(self):
        """Reset after a successful connection."""
        self.delay = 0


class MqttTransport:
    """Framed lines over MQTT; reconnects with bounded backoff instead of umqtt.robust's
    endless fixed-delay loop, so the main loop (and the watchdog) keeps running offline."""

    def __init__(self, client, node_id, prefix=b"battrace/nodes", backoff=None):
        self.client = client
        base = prefix + b"/" + node_id.encode()
        self.t_up = base + b"/up"
        self.t_cmd = base + b"/cmd"
        self.t_status = base + b"/status"
        self.backoff = backoff or Backoff()
        self.connected = False
        self.reader = LineReader()
        self.pending = -1
        self.eof = False
        self.hello_due = False
        self.attempts = 0
        client.set_callback(self._on_msg)
        client.set_last_will(self.t_status, b"offline", retain=True)

    def _on_msg(self, topic, msg):
        if topic != self.t_cmd or len(msg) > len(self.reader.buf):
            return
        self.reader.buf[: len(msg)] = msg
        self.pending = len(msg)

    def _connect(self):
        self.attempts += 1
        try:
            self.client.connect()
            self.client.subscribe(self.t_cmd)
            self.client.publish(self.t_status, b"online", retain=True)
        except Exception:  # OSError, or MQTTException for a refused CONNACK
            self._down()
            return
        self.connected = True
        self.hello_due = True
        self.backoff.succeeded()

    def _down(self):
        self.connected = False
        try:
            self.client.disconnect()
        except OSError:
            pass
        self.backoff.failed()

    def write(self, data):
        """Publish one framed line (dropped while offline: readings are periodic)."""
        if not self.connected:
            return
        try:
            self.client.publish(self.t_up, data[:-1])
        except OSError:
            self._down()

    def poll_line(self, timeout_ms):
        """Reconnect when due, then deliver one command line (length in ``reader.buf``) or -1."""
        if not self.connected:
            if self.backoff.due():
                self._connect()
            if not self.connected:
                time.sleep_ms(min(timeout_ms, 20))
                return -1
        try:
            self.client.check_msg()
        except OSError:
            self._down()
            return -1
        n = self.pending
        self.pending = -1
        if n < 0 and timeout_ms:
            time.sleep_ms(min(timeout_ms, 5))
        return n
