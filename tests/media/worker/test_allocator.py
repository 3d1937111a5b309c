"""The layer allocator: audio first, everyone's lowest layer, then the rest by priority, with a margin to go up."""

from __future__ import annotations

from kolabmeet.media.worker.allocator import UP_MARGIN, Want, allocate

WEBCAM = [150_000.0, 500_000.0]


def test_everyone_gets_the_best_that_fits() -> None:
    wants = [Want(1, WEBCAM, 1, 1), Want(1, WEBCAM, 1, 1)]
    assert allocate(2_000_000, wants) == [1, 1]
    assert allocate(700_000, wants) == [1, 0], "the first in line gets the upgrade"
    assert allocate(100_000, wants) == [0, 0], "the lowest layer even when nothing fits"


def test_screen_shares_go_first() -> None:
    wants = [Want(1, WEBCAM, 1, 0), Want(2, [300_000.0, 1_200_000.0], 1, 0)]
    assert allocate(1_600_000, wants) == [0, 1]


def test_going_up_needs_a_margin_staying_does_not() -> None:
    extra = WEBCAM[1] - WEBCAM[0]
    budget = WEBCAM[0] + extra * (1 + UP_MARGIN) / 2  # more than the extra cost, less than it with the margin
    assert allocate(budget, [Want(1, WEBCAM, 1, 1)]) == [1]
    assert allocate(budget, [Want(1, WEBCAM, 1, 0)]) == [0]


def test_layers_not_arriving_or_not_wanted_are_skipped() -> None:
    assert allocate(5_000_000, [Want(1, [150_000.0, 0.0], 1, 1)]) == [0]
    assert allocate(5_000_000, [Want(1, [0.0, 500_000.0], 1, -1)]) == [1]
    assert allocate(5_000_000, [Want(1, WEBCAM, 0, 0)]) == [0], "held down by its preferred layers"
    assert allocate(5_000_000, [Want(1, [0.0, 0.0], 1, -1)]) == [-1]
