"""The layer allocator: audio first, everyone's lowest rung, then the rest by priority, with a margin to go up."""

from __future__ import annotations

from kolabmeet.media.worker.allocator import NONE, TEMPORAL_SHARES, UP_MARGIN, Want, allocate, rungs, wanted_bitrate

WEBCAM = [150_000.0, 500_000.0]
L1T3 = TEMPORAL_SHARES[3]


def _spatial(budget: float, wants: list[Want]) -> list[int]:
    return [spatial for spatial, _temporal in allocate(budget, wants)]


def test_everyone_gets_the_best_that_fits() -> None:
    wants = [Want(1, WEBCAM, 1, 1), Want(1, WEBCAM, 1, 1)]
    assert _spatial(2_000_000, wants) == [1, 1]
    assert _spatial(700_000, wants) == [1, 0], "the first in line gets the upgrade"
    assert _spatial(100_000, wants) == [0, 0], "the lowest layer even when nothing fits"


def test_screen_shares_go_first() -> None:
    wants = [Want(1, WEBCAM, 1, 0), Want(2, [300_000.0, 1_200_000.0], 1, 0)]
    assert _spatial(1_600_000, wants) == [0, 1]


def test_going_up_needs_a_margin_staying_does_not() -> None:
    extra = WEBCAM[1] - WEBCAM[0]
    budget = WEBCAM[0] + extra * (1 + UP_MARGIN) / 2  # more than the extra cost, less than it with the margin
    assert _spatial(budget, [Want(1, WEBCAM, 1, 1)]) == [1]
    assert _spatial(budget, [Want(1, WEBCAM, 1, 0)]) == [0]


def test_layers_not_arriving_or_not_wanted_are_skipped() -> None:
    assert _spatial(5_000_000, [Want(1, [150_000.0, 0.0], 1, 1)]) == [0]
    assert _spatial(5_000_000, [Want(1, [0.0, 500_000.0], 1, -1)]) == [1]
    assert _spatial(5_000_000, [Want(1, WEBCAM, 0, 0)]) == [0], "held down by its preferred layers"
    assert allocate(5_000_000, [Want(1, [0.0, 0.0], 1, -1)]) == [NONE]


def test_the_ladder_climbs_frame_rate_on_the_lowest_encoding_then_resolution() -> None:
    ladder = rungs(Want(1, WEBCAM, 1, 0, temporal_layers=3, max_temporal=2))
    assert [rung for rung, _bitrate in ladder] == [(0, 0), (0, 1), (0, 2), (1, 2)]
    assert [bitrate for _rung, bitrate in ladder] == [WEBCAM[0] * share for share in L1T3] + [WEBCAM[1]]
    held = rungs(Want(1, WEBCAM, 1, 0, temporal_layers=3, max_temporal=0))
    assert held == [((0, 0), WEBCAM[0] * L1T3[0]), ((1, 0), WEBCAM[1] * L1T3[0])], "the preferred layer is the top"
    assert [rung for rung, _b in rungs(Want(1, [0.0, 500_000.0], 1, -1, 3, 2))] == [(1, 0), (1, 1), (1, 2)]


def test_under_the_lowest_encoding_the_frame_rate_drops() -> None:
    want = Want(1, WEBCAM, 1, 0, temporal_layers=3, max_temporal=2, current_temporal=2)
    assert allocate(WEBCAM[0], [want]) == [(0, 2)]
    assert allocate(WEBCAM[0] * 0.7, [want]) == [(0, 1)]
    assert allocate(WEBCAM[0] * 0.3, [want]) == [(0, 0)], "the base frame rate whatever the estimate"


def test_every_picture_gets_its_frame_rate_before_anyone_gets_a_higher_encoding() -> None:
    wants = [Want(1, WEBCAM, 1, 0, 3, 2, 2), Want(1, WEBCAM, 1, 0, 3, 2, 2)]
    assert allocate(2 * WEBCAM[0], wants) == [(0, 2), (0, 2)]
    assert allocate(2 * WEBCAM[0] * 0.8, wants) == [(0, 2), (0, 1)]
    assert allocate(WEBCAM[0] + WEBCAM[1] * UP_MARGIN, wants) == [(1, 2), (0, 2)]


def test_wanted_is_the_top_of_every_ladder_with_the_margin() -> None:
    wants = [Want(1, WEBCAM, 1, 0, 3, 2), Want(2, [300_000.0], 0, 0)]
    assert wanted_bitrate(wants) == (WEBCAM[1] + 300_000) * UP_MARGIN
