import random

from kolabmeet.media.worker import rtcp
from kolabmeet.media.worker.nack import NackGenerator


def feed(gen: NackGenerator, *seqs: int) -> list[bool]:
    return [gen.receive(seq) for seq in seqs]


def test_in_order_stream_has_nothing_missing():
    gen = NackGenerator()
    assert feed(gen, *range(65500, 65536), *range(0, 100)) == [False] * 136
    assert gen.missing_count == 0
    assert gen.pending(0.0) == []


def test_gap_is_nacked_at_once():
    gen = NackGenerator()
    feed(gen, 1, 2, 5)
    assert gen.missing_count == 2
    assert gen.pending(1000.0) == [3, 4]


def test_duplicates_and_old_packets_are_ignored():
    gen = NackGenerator()
    feed(gen, 10, 10, 11, 5)
    assert gen.missing_count == 0


def test_wrap_around():
    gen = NackGenerator()
    feed(gen, 65533, 65534, 2)
    assert gen.pending(0.0) == [65535, 0, 1]
    gen.receive(0)
    assert gen.missing_count == 2
    assert gen.pending(100.0) == [65535, 1]


def test_reordered_packet_leaves_the_missing_set():
    gen = NackGenerator()
    feed(gen, 10, 14, 12)
    assert gen.pending(0.0) == [11, 13]
    feed(gen, 11, 13)
    assert gen.missing_count == 0
    assert gen.pending(500.0) == []


def test_retries_are_paced_by_rtt():
    gen = NackGenerator(rtt_ms=100.0)
    feed(gen, 1, 3)
    assert gen.pending(0.0) == [2]
    assert gen.pending(40.0) == []
    assert gen.pending(99.0) == []
    assert gen.pending(100.0) == [2]
    gen.set_rtt(30.0)
    assert gen.pending(120.0) == []
    assert gen.pending(130.0) == [2]


def test_new_gap_is_nacked_without_waiting_for_older_ones():
    gen = NackGenerator()
    feed(gen, 1, 3)
    assert gen.pending(0.0) == [2]
    gen.receive(5)
    assert gen.pending(10.0) == [4]
    assert gen.pending(100.0) == [2]
    assert gen.pending(110.0) == [4]


def test_zero_rtt_falls_back_to_default():
    gen = NackGenerator(rtt_ms=20.0)
    gen.set_rtt(0.0)
    feed(gen, 1, 3)
    assert gen.pending(0.0) == [2]
    assert gen.pending(99.0) == []
    assert gen.pending(100.0) == [2]


def test_retries_are_limited():
    gen = NackGenerator(max_retries=3, rtt_ms=10.0)
    feed(gen, 1, 3)
    assert [gen.pending(t) for t in (0.0, 10.0, 20.0, 30.0, 40.0)] == [[2], [2], [2], [], []]
    assert gen.missing_count == 0
    gen.receive(2)  # the late original changes nothing
    assert gen.missing_count == 0


def test_too_many_missing_asks_for_a_key_frame():
    gen = NackGenerator(max_nack_packets=5)
    assert feed(gen, 0, 6) == [False, False]
    assert gen.missing_count == 5
    assert gen.receive(8) is True  # 5 + 1 > 5
    assert gen.missing_count == 0
    assert gen.pending(0.0) == []
    assert gen.receive(9) is False  # stream continues from the new highest
    assert gen.receive(11) is False
    assert gen.pending(0.0) == [10]


def test_huge_jump_asks_for_a_key_frame():
    gen = NackGenerator()
    assert feed(gen, 100, 20000) == [False, True]
    assert gen.missing_count == 0


def test_entries_older_than_max_packet_age_are_dropped():
    gen = NackGenerator(max_packet_age=100, max_nack_packets=1000, rtt_ms=1000.0)
    feed(gen, 0, 2, 4)
    assert gen.pending(0.0) == [1, 3]
    feed(gen, *range(5, 103))  # newest 102: 1 is now older than 102 - 100
    assert gen.pending(5000.0) == [3]
    assert gen.missing_count == 1


def test_jump_beyond_max_packet_age_only_tracks_recent_seqs():
    gen = NackGenerator(max_packet_age=10, max_nack_packets=1000)
    feed(gen, 0, 50)
    assert gen.pending(0.0) == list(range(40, 50))


def test_recovered_packet_fills_a_gap():
    gen = NackGenerator()
    feed(gen, 1, 4)
    assert gen.receive(2, is_recovered=True) is False
    assert gen.pending(0.0) == [3]


def test_recovered_packet_ahead_does_not_advance_or_get_nacked():
    gen = NackGenerator()
    gen.receive(1)
    gen.receive(3, is_recovered=True)  # via RTX, newer than anything seen
    assert gen.missing_count == 0
    gen.receive(5)
    assert gen.pending(0.0) == [2, 4]
    gen.receive(6)
    assert gen.missing_count == 2


def test_reset():
    gen = NackGenerator()
    feed(gen, 1, 5)
    gen.reset()
    assert gen.missing_count == 0
    feed(gen, 40000, 40001)
    assert gen.pending(0.0) == []


def test_pending_round_trips_through_rtcp_nack():
    gen = NackGenerator(max_nack_packets=2000)
    rng = random.Random(7)
    seq, received = 65000, []
    for _ in range(1500):
        seq = (seq + 1) & 0xFFFF
        if rng.random() > 0.2:
            gen.receive(seq)
            received.append(seq)
    lost = gen.pending(0.0)
    assert lost and not set(lost) & set(received)
    assert lost[0] >= 65000 and lost[-1] < 1000  # ascending across the wrap
    packet = rtcp.nack(0x1111, 0x2222, lost)
    assert rtcp.parse_nack(packet, 0, len(packet)) == lost
    assert rtcp.parse_feedback_ssrcs(packet, 0, len(packet)) == (0x1111, 0x2222)


def test_is_missing_tells_what_has_not_arrived() -> None:
    nack = NackGenerator()
    assert nack.is_missing(100), "nothing has arrived yet"
    nack.receive(100)
    nack.receive(103)
    assert not nack.is_missing(100) and not nack.is_missing(103), "arrived"
    assert nack.is_missing(101) and nack.is_missing(102), "lost"
    assert nack.is_missing(104), "not sent yet"
    nack.receive(101, is_recovered=True)
    assert not nack.is_missing(101)
    nack.receive(105, is_recovered=True)
    assert not nack.is_missing(105), "recovered ahead of the newest"
