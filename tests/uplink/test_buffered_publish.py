"""BufferedClient's own PUBLISH decoder and packet cutter against paho's, on the same bytes.

Any stream of packets (plain QoS 0/1 messages, QoS 2, MQTT 5 properties, empty and invalid
UTF-8 topics, truncated and malformed packets, remaining lengths longer than 4 bytes, garbage)
gives the same messages, the same fields and properties, and the same return codes as paho's
own reader; the PUBACKs of a batch leave as one write.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

import paho.mqtt.client as paho
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge_agent.uplink.mqtt_buffered import BufferedClient, ReceivedMessage

MQTT5, MQTT311 = MQTTProtocolVersion.MQTTv5, MQTTProtocolVersion.MQTTv311


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish(
    topic: bytes,
    payload: bytes,
    *,
    qos: int = 1,
    mid: int = 7,
    props: bytes | None = b"",
    flags: int = 0,
) -> bytes:
    """A PUBLISH packet (``props``: MQTT 5 property bytes, None for 3.1.1)."""
    body = struct.pack("!H", len(topic)) + topic + (struct.pack("!H", mid) if qos else b"")
    if props is not None:
        body += _varint(len(props)) + props
    body += payload
    return bytes([0x30 | qos << 1 | flags]) + _varint(len(body)) + body


def _receive(cls: type[paho.Client], stream: bytes, protocol: MQTTProtocolVersion) -> list[Any]:
    """What a client of ``cls`` makes of ``stream``: each message's fields, and the codes."""
    a, b = socket.socketpair()
    b.setblocking(False)
    client = cls(callback_api_version=CallbackAPIVersion.VERSION2, client_id="t", protocol=protocol)
    client._sock = b
    client.suppress_exceptions = True
    seen: list[Any] = []

    def on_message(_c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        props = msg.properties
        seen.append(
            (
                msg._topic,
                msg.payload,
                msg.qos,
                msg.mid,
                msg.retain,
                msg.dup,
                None if props is None else props.json(),
                msg.info.mid,
            )
        )

    client.on_message = on_message
    try:
        a.sendall(stream)
        for _ in range(stream.count(b"\x30") + stream.count(b"\x32") + 40):
            rc = client.loop_read()
            seen.append(int(rc))
            if rc or client._sock is None:
                break
    finally:
        a.close()
        b.close()
    while seen and seen[-1] == 0:  # paho reads one packet per call, the buffered client all
        seen.pop()
    return [s for s in seen if s != 0]


def _same(stream: bytes, protocol: MQTTProtocolVersion = MQTT5) -> list[Any]:
    ours = _receive(BufferedClient, stream, protocol)
    assert ours == _receive(paho.Client, stream, protocol)
    return ours


def test_plain_messages_and_the_rest_decode_as_paho_decodes_them() -> None:
    packets = [
        publish(b"a/b", b"one", qos=0),
        publish(b"a/b", b"two", qos=1, mid=65535, flags=0x08 | 0x01),
        publish(b"a/b", b"three", qos=2, mid=9),  # paho's own path
        publish(b"a/c", b"props", props=b"\x01\x01"),  # payload format indicator
        publish(b"a/\xff", b"bad utf-8 topic"),
        publish(b"", b"empty topic (alias)", props=b"\x23\x00\x01"),
    ]
    got = _same(b"".join(packets))
    assert [m[1] for m in got if isinstance(m, tuple)][:2] == [b"one", b"two"]
    assert len([m for m in got if isinstance(m, tuple)]) >= 4
    _same(b"".join(publish(b"x/y", b"v3 %d" % i, props=None) for i in range(5)), MQTT311)


def test_malformed_and_overlong_packets_give_paho_s_codes() -> None:
    assert _same(publish(b"a", b"ok") + b"\x32\x80\x80\x80\x80\x01") == [
        (b"a", b"ok", 1, 7, False, False, {}, 7),
        int(paho.MQTT_ERR_PROTOCOL),
    ]
    _same(b"\x32\x03\x00\x09a")  # topic longer than the packet
    _same(b"\x32\x05\x00\x01a\x00")  # no room for the properties
    _same(publish(b"a", b"p", props=b"\x01"))  # a property cut short
    _same(publish(b"a", b"half")[:-2])  # not all there yet
    # PINGREQ / PINGRESP must have no body: paho's handlers check the remaining length
    assert _same(b"\xc0\x04" + publish(b"", b"", qos=0)) == [int(paho.MQTT_ERR_PROTOCOL)]
    assert _same(b"\xd0\x01\x00") == [int(paho.MQTT_ERR_PROTOCOL)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.builds(
                publish,
                st.binary(max_size=8),
                st.binary(max_size=40),
                qos=st.integers(0, 2),
                mid=st.integers(1, 65535),
                props=st.sampled_from([b"", b"\x01\x01", b"\x02\x00\x00\x00\x05", b"\x26\x00"]),
                flags=st.sampled_from([0, 1, 8, 9]),
            ),
            st.binary(max_size=12),
        ),
        max_size=6,
    ),
    st.sampled_from([MQTT5, MQTT311]),
)
def test_any_stream_gives_what_paho_gives(
    packets: list[bytes], protocol: MQTTProtocolVersion
) -> None:
    _same(b"".join(packets), protocol)


def test_properties_and_info_are_made_on_demand() -> None:
    message = ReceivedMessage.__new__(ReceivedMessage)
    message.mid = 3
    assert message.properties is not None and message.properties.json() == {}
    assert message.info.mid == 3 and message.info is message.info


def test_a_batch_of_acks_is_one_write(monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = socket.socketpair()
    client = BufferedClient(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id="t", manual_ack=True
    )
    client._sock = b
    writes: list[bytes] = []
    send = paho.Client._sock_send

    def counted(self: paho.Client, buf: bytes) -> int:
        writes.append(bytes(buf))
        return send(self, buf)

    monkeypatch.setattr(paho.Client, "_sock_send", counted)
    try:
        client.ack_batch([(1, 1), (2, 0), (300, 1)])  # QoS 0 needs no ack
        client.loop_write()
        assert writes == [b"\x40\x02\x00\x01\x40\x02\x01\x2c"]
        assert a.recv(100) == writes[0]
    finally:
        a.close()
        b.close()
