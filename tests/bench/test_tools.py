"""The benchmark tools still run end to end (a smoke test: no timing is asserted)."""

from __future__ import annotations

import pytest

import os
import time

from bench import forwarding, join, join_stages


def test_a_process_cpu_time_is_read_finer_than_proc_ticks() -> None:
    before, own_before = forwarding.process_cpu_seconds(os.getpid()), time.process_time()
    while time.process_time() - own_before < 0.003:
        pass
    spent = forwarding.process_cpu_seconds(os.getpid()) - before
    assert 0.003 <= spent < 0.009  # /proc would say 0 or 0.01


def test_a_process_that_sleeps_is_counted_as_switched_out() -> None:
    switches, moves = forwarding.scheduling(os.getpid())
    for _ in range(3):
        time.sleep(0.001)
    later, later_moves = forwarding.scheduling(os.getpid())
    assert later >= switches + 3 and later_moves >= moves >= 0


@pytest.mark.parametrize("webrtc", [False, True], ids=["plain", "webrtc"])
async def test_forwarding_bench_forwards(webrtc: bool) -> None:
    result = await forwarding.one_run(fanout=2, rate=500, seconds=0.5, webrtc=webrtc)
    assert result["forwarded"] > 0.9 and result["us_per_packet"] > 0


@pytest.mark.parametrize("concurrent", [False, True], ids=["one-by-one", "at-once"])
async def test_join_bench_joins(concurrent: bool) -> None:
    result = await join.one_run(peers=3, concurrent=concurrent)
    assert 0 < result["join_p50_ms"] <= result["join_p95_ms"]
    assert result["control_us_per_request"] >= 0  # every peer's pings were answered (ok raises otherwise)


async def test_join_bench_joins_the_floor_server() -> None:
    result = await join.one_run(peers=3, concurrent=True, floor=True)
    assert 0 < result["join_p50_ms"] <= result["join_p95_ms"]
    assert "control_cpu_ms_per_join" in result and "worker_cpu_ms_per_join" not in result


async def test_join_stages_bench_measures_every_step() -> None:
    figures = await join_stages.measure(peers=3, rounds=2, floor=False)
    assert list(figures) == ["token call", *(name for name, _ in join_stages.STEPS)]
    assert all(len(rounds) == 2 and all(server > 0 for server, _, _ in rounds) for rounds in figures.values())
