"""The participants bench at a small size: rooms where everyone receives everyone (over two workers; two
rooms side by side; over WebRTC)."""

from __future__ import annotations

import pytest

from bench.participants import matched_peers, one_run, passes


async def test_a_room_over_two_workers_carries_everyone_to_everyone() -> None:
    result = await one_run(peers=4, seconds=1.0, workers=2)
    assert result["workers_used"] == 2, "the room spreads past ROUTER_SCALE_SIZE (half the peers)"
    assert result["fewest_streams_received"] == 6, "each peer gets the 3 others' mic and webcam"
    assert result["loss"] == 0 and result["lowest_score"] == 10
    assert result["delivered_per_s"] > 0.9 * 4 * 3 * (50 + 90), "every mic at 50 and high layer at 90 packets/s"
    assert result["first_video_consumers"] == result["newcomer_video_consumers"] == 4
    assert result["first_video_ms_max"] < 1000
    assert result["switches_per_worker_s"] > 0, "a worker not saturated sleeps between packets"
    assert result["workers_mib_per_peer"] > 0
    assert passes(result)


async def test_two_rooms_take_a_worker_each() -> None:
    result = await one_run(peers=6, seconds=1.0, workers=2, rooms=2)
    assert result["workers_used"] == 2
    assert result["fewest_streams_received"] == 4, "each peer gets its own room's 2 others' mic and webcam"
    assert result["loss"] == 0 and result["lowest_score"] == 10
    assert result["delivered_per_s"] > 0.9 * 2 * 3 * 2 * (50 + 90)
    assert result["first_video_consumers"] == result["newcomer_video_consumers"] == 3, "the newcomer's room's webcams"
    assert passes(result)


@pytest.mark.parametrize("send_path", ["compiled", "pure"])
async def test_a_webrtc_room_carries_everyone_to_everyone(send_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """As browsers connect (ICE, DTLS, SRTP both ways); the receivers' reports go back as SRTCP.

    Once with each twin of the send step (the workers are new processes: they read the variable)."""
    if send_path == "pure":
        monkeypatch.setenv("KOLABMEET_NO_EXTENSIONS", "1")
    result = await one_run(peers=3, seconds=1.0, workers=1, webrtc=True)
    assert result["fewest_streams_received"] == 4
    assert result["loss"] == 0 and result["lowest_score"] == 10
    assert result["first_video_consumers"] == result["newcomer_video_consumers"] == 3
    assert passes(result)


def test_the_matched_room_carries_the_load_of_each_worker_of_the_split_one() -> None:
    assert matched_peers(30, 2) == 21, "21 x 20 = 420 streams, nearest to 30 x 29 / 2 = 435"
    assert matched_peers(4, 2) == 3
    assert matched_peers(16, 1) == 16
