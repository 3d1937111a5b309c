"""Transport-wide CC feedback: the packet builder (byte fixture, round trip) and the arrival recorder."""

from __future__ import annotations

from kolabmeet.media.worker import rtcp
from kolabmeet.media.worker.tcc_feedback import MAX_STATUSES, TccFeedback

# sender 1, media 2, base 100, 4 packets, reference time 5 (x 64 ms), feedback count 7; deltas 4 ticks,
# lost, 300 ticks (a large delta: two bytes), 0 ticks: one two-bit status vector chunk 11 01 00 10 01 00 00 00.
FIXTURE = bytes.fromhex("8fcd0006" "00000001" "00000002" "0064" "0004" "00000507" "d240" "04" "012c" "00" "0000")


def parse(packet: bytes) -> rtcp.TransportCc:
    ((pt, fmt, offset, size),) = list(rtcp.iter_packets(packet))
    assert (pt, fmt) == (rtcp.PT_RTPFB, rtcp.FMT_TCC)
    parsed = rtcp.parse_transport_cc(packet, offset, size)
    assert parsed is not None
    return parsed


def test_builder_matches_the_fixture() -> None:
    assert rtcp.transport_cc(1, 2, 100, 5, 7, [4, None, 300, 0]) == FIXTURE
    feedback = parse(FIXTURE)
    assert (feedback.base_seq, feedback.status_count, feedback.reference_time, feedback.fb_count) == (100, 4, 5, 7)
    assert feedback.packets == [(100, True, 1000), (101, False, None), (102, True, 75000), (103, True, 0)]


def test_builder_uses_run_lengths_and_one_bit_vectors() -> None:
    deltas = [1] * 20 + [None] * 30 + [2, None] * 7 + [-5]
    feedback = parse(rtcp.transport_cc(9, 9, 65530, 1, 0, deltas))
    assert [received for _seq, received, _d in feedback.packets] == [d is not None for d in deltas]
    assert [d for _seq, _r, d in feedback.packets if d is not None] == [t * 250 for t in deltas if t is not None]
    assert feedback.packets[-1][0] == (65530 + len(deltas) - 1) & 0xFFFF


def _arrival_times(packets: list[bytes]) -> dict[int, float]:
    """Sequence number -> arrival (ms) for every packet reported received; lost ones map to None."""
    times: dict[int, float] = {}
    for packet in packets:
        feedback = parse(packet)
        clock = feedback.reference_time * 64000
        for seq, received, delta in feedback.packets:
            if received:
                clock += delta
            times[seq] = clock / 1000 if received else None
    return times


def test_arrivals_losses_and_reordering_are_reported() -> None:
    tcc = TccFeedback()
    start = 1000.0
    for seq, at_ms in ((65534, 0), (65535, 5), (1, 7), (0, 9), (3, 30)):  # 2 lost, 0 late, wraps
        tcc.received(seq, start + at_ms / 1000, ssrc=77)
    times = _arrival_times(tcc.packets(5))
    assert times[2] is None
    base = times[65534]
    assert {seq: round(t - base, 2) for seq, t in times.items() if t is not None} == {
        65534: 0, 65535: 5, 1: 7, 0: 9, 3: 30}
    assert not tcc.pending and tcc.packets(5) == []
    tcc.received(0, start + 0.05, ssrc=77)  # already reported: ignored
    assert not tcc.pending
    tcc.received(4, start + 0.06, ssrc=77)
    (packet,) = tcc.packets(5)
    assert parse(packet).base_seq == 4 and parse(packet).fb_count == 1


def test_long_gaps_and_long_reports_split() -> None:
    tcc = TccFeedback()
    for seq in range(MAX_STATUSES + 10):
        tcc.received(seq, 50.0 + seq / 1000, ssrc=1)
    tcc.received(MAX_STATUSES + 10, 70.0, ssrc=1)  # 19 s later: no 16-bit delta reaches it
    packets = tcc.packets(5)
    assert len(packets) == 3
    times = _arrival_times(packets)
    assert len(times) == MAX_STATUSES + 11 and all(t is not None for t in times.values())
    assert round(times[MAX_STATUSES + 10] - times[0], 1) == 20000.0


def test_a_skipped_number_is_noted_until_the_next_report() -> None:
    tcc = TccFeedback()
    tcc.received(10, 1.0, ssrc=1)
    tcc.received(11, 1.001, ssrc=1)
    assert not tcc.gap
    tcc.received(13, 1.002, ssrc=1)
    assert tcc.gap
    tcc.packets(5)
    assert not tcc.gap
    tcc.received(12, 1.003, ssrc=1)  # late, already reported lost
    tcc.received(14, 1.004, ssrc=1)
    assert not tcc.gap
