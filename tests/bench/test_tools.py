"""The benchmark tools still run end to end (a smoke test: no timing is asserted)."""

from __future__ import annotations

import pytest

from bench import forwarding, join


@pytest.mark.parametrize("webrtc", [False, True], ids=["plain", "webrtc"])
async def test_forwarding_bench_forwards(webrtc: bool) -> None:
    result = await forwarding.one_run(fanout=2, rate=500, seconds=0.5, webrtc=webrtc)
    assert result["forwarded"] > 0.9 and result["us_per_packet"] > 0


@pytest.mark.parametrize("concurrent", [False, True], ids=["one-by-one", "at-once"])
async def test_join_bench_joins(concurrent: bool) -> None:
    result = await join.one_run(peers=3, concurrent=concurrent)
    assert 0 < result["join_p50_ms"] <= result["join_p95_ms"]
