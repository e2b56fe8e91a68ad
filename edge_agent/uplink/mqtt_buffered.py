"""paho's client with a leaner receive and ack path (``BufferedClient``, made by ``make_client``).

paho reads a packet as three ``recv`` calls (command byte, each byte of the remaining length,
the rest) and one packet per ``select`` wake-up, builds an MQTT 5 ``Properties`` object, an
``MQTTMessageInfo`` (with its ``threading.Condition``) for every received message, walks its
topic matcher for every message, and writes each PUBACK with its own ``send``. A subscriber
with a backlog of small QoS 1 messages spends most of its receive CPU there. Here:

- ``recv`` fills a buffer (up to 64 KiB a call) and packets are cut from it; ``loop_read``
  handles every whole packet in the buffer before paho waits in ``select`` again;
- a PUBLISH without properties (QoS 0 or 1) is decoded here; its ``properties`` (empty) and
  ``info`` are made only if read. Anything else (QoS 2, properties present, a malformed packet)
  goes through paho's own decoder, with its errors;
- the topic matcher is skipped while no per-topic callback is registered;
- ``ack_batch`` queues the PUBACKs of a batch as one write.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

if TYPE_CHECKING:
    pass

_PUBACK = 0x40
_PUBLISH = 0x30
_MQTT5 = MQTTProtocolVersion.MQTTv5
_OK = MQTTErrorCode.MQTT_ERR_SUCCESS
_AGAIN = MQTTErrorCode.MQTT_ERR_AGAIN
_PUBACK_OF = struct.Struct("!BBH")
_time = paho.time_func


class ReceivedMessage(paho.MQTTMessage):
    """A received message whose empty ``properties`` and unused ``info`` are made on demand."""

    __slots__ = ()

    @property  # type: ignore[override]
    def info(self) -> paho.MQTTMessageInfo:
        """paho's ``MQTTMessageInfo`` (never used for a received message; made if asked)."""
        try:
            return _INFO_SLOT.__get__(self)  # type: ignore[no-any-return]
        except AttributeError:
            info = paho.MQTTMessageInfo(self.mid)
            _INFO_SLOT.__set__(self, info)
            return info

    @info.setter
    def info(self, value: paho.MQTTMessageInfo) -> None:
        _INFO_SLOT.__set__(self, value)

    @property  # type: ignore[override]
    def properties(self) -> Properties | None:
        """The MQTT 5 properties (an empty ``Properties`` on MQTT 5, None on 3.1.1)."""
        try:
            return _PROPERTIES_SLOT.__get__(self)  # type: ignore[no-any-return]
        except AttributeError:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            _PROPERTIES_SLOT.__set__(self, props)
            return props

    @properties.setter
    def properties(self, value: Properties | None) -> None:
        _PROPERTIES_SLOT.__set__(self, value)


_INFO_SLOT: Any = paho.MQTTMessage.__dict__["info"]
_PROPERTIES_SLOT: Any = paho.MQTTMessage.__dict__["properties"]


class BufferedClient(paho.Client):
    """paho's client with buffered reads, a lean PUBLISH decoder and batched acks."""

    _READ_CHUNK = 65536

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_buffer = bytearray()
        self._read_pos = 0
        self._read_sock: object = None  # the socket the buffer came from (void after a reconnect)

    # --- reading ------------------------------------------------------------------------

    def _whole_packet(self) -> tuple[int, int, int] | None:
        """(command, start of the body, its end) of the next buffered packet, if all there;
        ``(0, 0, -1)`` for a remaining length longer than MQTT's 4 bytes."""
        buf, pos = self._read_buffer, self._read_pos
        end = len(buf)
        if self._read_sock is not self._sock or pos >= end:
            return None
        length, mult, i = 0, 1, pos + 1
        while True:
            if i >= end:
                return None
            if i - pos > 4:  # a fifth length byte: paho's reader refuses it as it comes
                return 0, 0, -1
            byte = buf[i]
            length += (byte & 127) * mult
            mult *= 128
            i += 1
            if not byte & 128:
                break
        if i + length > end:
            return None
        return buf[pos], i, i + length

    def _fill(self) -> MQTTErrorCode | None:
        """Read once more into the buffer; an error code when nothing could be read."""
        if self._read_sock is not self._sock:  # a new connection: nothing left of the old one
            self._read_buffer, self._read_pos, self._read_sock = bytearray(), 0, self._sock
        try:
            data = self._sock_recv(self._READ_CHUNK)
        except BlockingIOError:
            return _AGAIN
        except OSError as err:
            self._easy_log(paho.MQTT_LOG_ERR, "failed to receive on socket: %s", err)
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        if not data:
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        if self._read_pos:  # keep only the unread tail
            del self._read_buffer[: self._read_pos]
            self._read_pos = 0
        self._read_buffer += data
        with self._msgtime_mutex:
            self._last_bytes_received = _time()
        return None

    def _packet_read(self) -> MQTTErrorCode:
        whole = self._whole_packet()
        reads = 0
        while whole is None:
            failed = self._fill()
            if failed is not None:
                return failed
            reads += 1
            whole = self._whole_packet()
            if whole is None and reads >= 100:  # a huge packet: let the loop breathe (as paho)
                return _AGAIN
        command, start, end = whole
        if end < 0:
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        # paho's handlers read these three (PINGREQ/PINGRESP check the remaining length); the
        # rest of its packet state is for its own reader
        in_packet = self._in_packet
        in_packet["command"] = command
        in_packet["packet"] = self._read_buffer[start:end]
        in_packet["remaining_length"] = end - start
        self._read_pos = end
        try:
            rc: MQTTErrorCode = self._packet_handle()
        except MalformedPacket as exc:
            self._easy_log(paho.MQTT_LOG_DEBUG, "Received malformed packet: %s", exc)
            rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
        finally:
            in_packet["command"] = 0
            in_packet["packet"] = bytearray()
            in_packet["remaining_length"] = 0
        return rc

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """paho's ``loop_read``, repeated while whole packets wait in the buffer."""
        rc = super().loop_read(max_packets)
        while rc == _OK and self._whole_packet() is not None:
            rc = super().loop_read(max_packets)
        return rc

    def _handle_publish(self) -> MQTTErrorCode:
        header = self._in_packet["command"]
        packet = self._in_packet["packet"]
        qos = (header & 0x06) >> 1
        v5 = self._protocol == _MQTT5
        size = len(packet)
        start = 2 + (packet[0] << 8 | packet[1]) if size >= 2 else size + 1
        pos = start + (2 if qos else 0)
        # the plain case only; paho decodes (and refuses) everything else
        if qos > 1 or start == 2 or pos + v5 > size or (v5 and packet[pos] != 0):
            return super()._handle_publish()  # type: ignore[no-any-return]
        message = ReceivedMessage.__new__(ReceivedMessage)
        message._topic = bytes(packet[2:start])
        message.mid = packet[start] << 8 | packet[start + 1] if qos else 0
        message.payload = bytes(packet[pos + v5 :])
        message.dup = bool(header & 0x08)
        message.qos = qos
        message.retain = bool(header & 0x01)
        message.state = paho.mqtt_ms_invalid
        if not v5:
            message.properties = None
        if self.on_log is not None or self._logger is not None:
            self._easy_log(
                paho.MQTT_LOG_DEBUG,
                "Received PUBLISH (d%d, q%d, r%d, m%d), '%s', ...  (%d bytes)",
                message.dup,
                qos,
                message.retain,
                message.mid,
                message._topic.decode("utf-8", "replace"),
                len(message.payload),
            )
        message.timestamp = _time()
        self._handle_on_message(message)
        if qos == 1 and not self._manual_ack:
            return self._send_puback(message.mid)  # type: ignore[no-any-return]
        return _OK

    def _handle_on_message(self, message: paho.MQTTMessage) -> None:
        with self._callback_mutex:
            filtered = bool(self._on_message_filtered._root._children)
            on_message = self.on_message
        if filtered or on_message is None:
            super()._handle_on_message(message)
            return
        with self._in_callback_mutex:
            try:
                on_message(self, self._userdata, message)
            except Exception as err:
                self._easy_log(paho.MQTT_LOG_ERR, "Caught exception in on_message: %s", err)
                if not self.suppress_exceptions:
                    raise

    # --- acknowledging ------------------------------------------------------------------

    def ack_batch(self, acks: Iterable[tuple[int, int]]) -> None:
        """Acknowledge (mid, qos) pairs (``manual_ack``): the PUBACKs go out as one write."""
        if not self._manual_ack:
            return
        pubacks = bytearray()
        for mid, qos in acks:
            if qos == 1:
                pubacks += _PUBACK_OF.pack(_PUBACK, 2, mid)
            elif qos == 2:
                self.ack(mid, qos)
        if pubacks:
            if self.on_log is not None or self._logger is not None:
                self._easy_log(paho.MQTT_LOG_DEBUG, "Sending %d PUBACKs", len(pubacks) // 4)
            self._packet_queue(_PUBACK, bytes(pubacks), 0, 0)
