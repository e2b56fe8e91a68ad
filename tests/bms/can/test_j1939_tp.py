"""J1939-21 transport state machines with a fake clock: handshakes, timers, faults, fuzzing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.bms.can import j1939_tp as tp
from edge_agent.bms.can.j1939_tp_sender import TpSender

BMS, CHARGER, PGN_BRM = 0xF4, 0x56, 0x0200


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def frames_of(sent: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    out = list(sent)
    sent.clear()
    return out


def make_pair(data: bytes, window: int = 255, sender_window: int = 255):
    clock = Clock()
    to_rx: list[tuple[int, bytes]] = []
    to_tx: list[tuple[int, bytes]] = []
    rx = tp.TpReceiver(
        address=CHARGER,
        send=lambda i, d: to_tx.append((i, d)),
        clock=clock,
        max_packets_per_cts=window,
    )
    sender = TpSender(
        address=BMS,
        dest=CHARGER,
        pgn=PGN_BRM,
        data=data,
        send=lambda i, d: to_rx.append((i, d)),
        clock=clock,
        max_packets_per_cts=sender_window,
    )
    return clock, rx, sender, to_rx, to_tx


def pump(rx, sender, to_rx, to_tx, drop=lambda i, d: False, rounds=50):
    events = []
    for _ in range(rounds):
        if not to_rx and not to_tx:
            break
        for can_id, data in frames_of(to_rx):
            if not drop(can_id, data):
                events += rx.on_frame(can_id, data)
        for can_id, data in frames_of(to_tx):
            sender.on_frame(can_id, data)
    return events


def test_ids_match_the_reference_table():
    assert tp.make_id(7, tp.PGN_TP_CM, CHARGER, BMS) == 0x1CEC56F4
    assert tp.make_id(7, tp.PGN_TP_DT, CHARGER, BMS) == 0x1CEB56F4
    assert tp.make_id(7, tp.PGN_TP_CM, BMS, CHARGER) == 0x1CECF456
    assert tp.make_id(7, PGN_BRM, CHARGER, BMS) == 0x1C0256F4
    assert tp.split_id(0x1C0256F4) == (7, PGN_BRM, CHARGER, BMS)
    assert tp.split_id(0x18FEF100)[1:] == (0xFEF1, tp.GLOBAL, 0)  # PDU2


def test_rts_cts_41_bytes_is_six_packets_and_acknowledged():
    data = bytes(range(41))
    _clock, rx, sender, to_rx, to_tx = make_pair(data)
    sender.start()
    rts = to_rx[0]
    assert rts == (0x1CEC56F4, bytes((16, 41, 0, 6, 255, 0x00, 0x02, 0x00)))
    events = pump(rx, sender, to_rx, to_tx)
    assert events == [tp.TpCompleted(PGN_BRM, BMS, CHARGER, data)]
    assert isinstance(sender.result, tp.TpCompleted)
    assert sender.packets_sent == 6


def test_cts_windows_and_eoma_bytes():
    data = bytes(range(49))
    _clock, rx, sender, to_rx, to_tx = make_pair(data, window=3)
    sender.start()
    rx.on_frame(*to_rx.pop(0))
    cts = to_tx[0]
    assert cts == (0x1CECF456, bytes((17, 3, 1, 0xFF, 0xFF, 0x00, 0x02, 0x00)))
    sent_to_tx: list[bytes] = []
    events = []
    for _ in range(10):
        for f in frames_of(to_tx):
            sent_to_tx.append(f[1])
            sender.on_frame(*f)
        for f in frames_of(to_rx):
            events += rx.on_frame(*f)
    assert [b[0] for b in sent_to_tx] == [17, 17, 17, 19]  # 3 windows of 3, 3, 1 packets, then EOMA
    assert sent_to_tx[-1] == bytes((19, 49, 0, 7, 0xFF, 0x00, 0x02, 0x00))
    assert events[0].data == data


def test_bam_is_reassembled_without_handshake():
    clock = Clock()
    rx = tp.TpReceiver(address=CHARGER, send=lambda i, d: None, clock=clock)
    out: list[tuple[int, bytes]] = []
    sender = TpSender(
        address=BMS,
        dest=tp.GLOBAL,
        pgn=0x1500,
        data=bytes(20),
        send=lambda i, d: out.append((i, d)),
        clock=clock,
    )
    sender.start()
    while not sender.done:
        clock.t += 0.05
        sender.poll()
    events = [e for f in out for e in rx.on_frame(*f)]
    assert events == [tp.TpCompleted(0x1500, BMS, tp.GLOBAL, bytes(20))]
    assert out[0][1][0] == tp.BAM


def test_missing_packet_is_requested_again():
    data = bytes(range(41))
    _clock, rx, sender, to_rx, to_tx = make_pair(data)
    dropped = []

    def drop(can_id, d):
        if (can_id >> 16) & 0xFF == 0xEB and d[0] == 3 and not dropped:
            dropped.append(3)
            return True
        return False

    sender.start()
    events = pump(rx, sender, to_rx, to_tx, drop)
    assert len(events) == 1 and events[0].data == data
    assert events[0].retransmits == 1


def test_duplicates_and_out_of_order_packets():
    clock = Clock()
    acks: list[bytes] = []
    rx = tp.TpReceiver(address=CHARGER, send=lambda i, d: acks.append(d), clock=clock)
    data = bytes(range(100, 141))
    s = TpSender(
        address=BMS, dest=CHARGER, pgn=PGN_BRM, data=data, send=lambda i, d: None, clock=clock
    )
    rx.on_frame(0x1CEC56F4, bytes((16, 41, 0, 6, 255, 0, 2, 0)))
    events = []
    for seq in (2, 1, 1, 3, 5, 4, 4, 6):
        events += rx.on_frame(0x1CEB56F4, s.packet(seq))
    assert events[0].data == data and events[0].duplicates == 2
    assert acks[-1][0] == tp.EOMA


def test_t1_timeout_aborts_towards_sender():
    clock = Clock()
    sent: list[tuple[int, bytes]] = []
    rx = tp.TpReceiver(address=CHARGER, send=lambda i, d: sent.append((i, d)), clock=clock)
    rx.on_frame(0x1CEC56F4, bytes((16, 41, 0, 6, 255, 0, 2, 0)))
    rx.on_frame(0x1CEB56F4, bytes((1,)) + bytes(7))
    clock.t += 0.70
    assert rx.poll() == []
    clock.t += 0.10
    (event,) = rx.poll()
    assert (
        isinstance(event, tp.TpAborted)
        and event.reason == tp.ABORT_TIMEOUT
        and event.by == "timeout"
    )
    assert sent[-1] == (0x1CECF456, bytes((255, 3, 255, 255, 255, 0, 2, 0)))
    assert not rx.active


def test_t2_timeout_after_cts():
    clock = Clock()
    rx = tp.TpReceiver(address=CHARGER, send=lambda i, d: None, clock=clock)
    rx.on_frame(0x1CEC56F4, bytes((16, 41, 0, 6, 255, 0, 2, 0)))
    clock.t += 1.2
    assert rx.poll() == []
    clock.t += 0.1
    assert rx.poll()[0].reason == tp.ABORT_TIMEOUT


def test_abort_from_sender_mid_transfer():
    clock = Clock()
    rx = tp.TpReceiver(address=CHARGER, send=lambda i, d: None, clock=clock)
    rx.on_frame(0x1CEC56F4, bytes((16, 41, 0, 6, 255, 0, 2, 0)))
    rx.on_frame(0x1CEB56F4, bytes((1,)) + bytes(7))
    (event,) = rx.on_frame(0x1CEC56F4, bytes((255, 2, 255, 255, 255, 0, 2, 0)))
    assert (event.by, event.reason, event.pgn) == ("peer", 2, PGN_BRM)
    assert rx.on_frame(0x1CEB56F4, bytes((2,)) + bytes(7)) == []  # late packets are ignored


def test_bad_announcements_are_refused():
    clock = Clock()
    sent: list[bytes] = []
    rx = tp.TpReceiver(address=CHARGER, send=lambda i, d: sent.append(d), clock=clock)
    (event,) = rx.on_frame(0x1CEC56F4, bytes((16, 41, 0, 5, 255, 0, 2, 0)))  # 41 bytes need 6
    assert event.by == "us" and sent[-1][0] == tp.ABORT
    (event,) = rx.on_frame(0x1CEC56F4, bytes((16, 0xFF, 0xFF, 255, 255, 0, 2, 0)))
    assert sent[-1][1] == tp.ABORT_TOO_LARGE
    assert rx.on_frame(0x1CEC56F4, bytes((16, 41))) == []  # short CM frame


def test_frames_for_other_nodes_are_ignored():
    rx = tp.TpReceiver(address=CHARGER, send=lambda i, d: None, clock=Clock())
    assert (
        rx.on_frame(tp.make_id(7, tp.PGN_TP_CM, 0x33, BMS), bytes((16, 41, 0, 6, 255, 0, 2, 0)))
        == []
    )
    assert not rx.active


def test_sender_times_out_without_cts_and_honours_hold():
    clock = Clock()
    sent: list[bytes] = []
    s = TpSender(
        address=BMS,
        dest=CHARGER,
        pgn=PGN_BRM,
        data=bytes(20),
        send=lambda i, d: sent.append(d),
        clock=clock,
    )
    s.start()
    s.on_frame(0x1CECF456, bytes((17, 0, 1, 255, 255, 0, 2, 0)))  # hold: wait up to T4
    clock.t += 1.0
    s.poll()
    assert not s.done
    clock.t += 0.1
    s.poll()
    assert isinstance(s.result, tp.TpAborted) and s.result.reason == tp.ABORT_TIMEOUT
    assert sent[-1][0] == tp.ABORT


def test_passive_receiver_follows_a_sniffed_transfer():
    clock = Clock()
    rx = tp.TpReceiver(address=CHARGER, send=None, clock=clock)
    s = TpSender(
        address=BMS,
        dest=CHARGER,
        pgn=PGN_BRM,
        data=bytes(range(13)),
        send=lambda i, d: None,
        clock=clock,
    )
    assert rx.on_frame(0x1CEC56F4, bytes((16, 13, 0, 2, 255, 0, 2, 0))) == []
    assert rx.on_frame(0x1CECF456, bytes((17, 2, 1, 255, 255, 0, 2, 0))) == []
    rx.on_frame(0x1CEB56F4, s.packet(1))
    (event,) = rx.on_frame(0x1CEB56F4, s.packet(2))
    assert event.data == bytes(range(13))


@settings(max_examples=300, deadline=None)
@given(
    size=st.integers(9, 300),
    drops=st.sets(st.integers(1, 43), max_size=4),
    dups=st.sets(st.integers(1, 43), max_size=4),
    window=st.integers(1, 16),
)
def test_loopback_with_losses_delivers_exact_data_or_aborts(size, drops, dups, window):
    data = bytes((i * 7) & 0xFF for i in range(size))
    clock, rx, sender, to_rx, to_tx = make_pair(data, window=window)
    dropped: set[int] = set()
    extra: list = []

    def lossy(can_id, d):
        if (can_id >> 16) & 0xFF != 0xEB:
            return False
        if d[0] in drops and d[0] not in dropped:
            dropped.add(d[0])
            return True
        if d[0] in dups:
            extra.extend(rx.on_frame(can_id, d))  # the first copy may already complete it
        return False

    sender.start()
    events = []
    for _ in range(40):
        events += pump(rx, sender, to_rx, to_tx, lossy)
        events = extra + events
        extra.clear()
        if events:
            break
        clock.t += 0.8
        events += rx.poll()
        sender.poll()
    assert events, "transfer neither completed nor aborted"
    if isinstance(events[0], tp.TpCompleted):
        assert events[0].data == data


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                [0x1CEC56F4, 0x1CEB56F4, 0x1CECFF56, 0x1CEBFFF4, 0x18FF0000, 0x1CEC5600]
            ),
            st.binary(min_size=0, max_size=8),
            st.floats(0, 2),
        ),
        max_size=60,
    )
)
def test_fuzz_receiver_never_crashes(frames):
    clock = Clock()
    for passive in (False, True):
        rx = tp.TpReceiver(
            address=CHARGER, send=None if passive else (lambda i, d: None), clock=clock
        )
        for can_id, data, dt in frames:
            clock.t += dt
            for event in rx.on_frame(can_id, data) + rx.poll():
                if isinstance(event, tp.TpCompleted):
                    assert 9 <= len(event.data) <= tp.MAX_SIZE
