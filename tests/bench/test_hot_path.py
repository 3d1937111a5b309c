"""The in-process hot-path bench, which also runs one stream through a consumer for longer than half the
sequence number space (a consumer once stopped forwarding 32768 packets after it started)."""

from __future__ import annotations

from bench.hot_path import run


async def test_a_stream_keeps_flowing_past_half_the_sequence_space() -> None:
    rounds = await run(fanout=2, count=25000, rounds=3, webrtc=False)
    for cost, received, expected in rounds:
        assert received == expected, (received, expected)
        assert cost > 0
