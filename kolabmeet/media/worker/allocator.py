"""Sharing a transport's estimated outgoing bitrate among its video consumers' layers.

A consumer's layers form a ladder of rungs, (spatial, temporal): the lowest
simulcast encoding at its base frame rate, then with each temporal layer more,
then each higher encoding at the full frame rate. So a bad link costs resolution
first and frame rate only below the lowest encoding. A rung's cost is its
encoding's measured bitrate times the share of it the temporal layers up to that
one carry (VP8 encoders split their rate so: TEMPORAL_SHARES). "Full" is the
consumer's preferred temporal layer.

Audio is never cut, so its bitrate comes off the estimate first. Then every video
consumer gets its lowest rung (a picture for everyone, if slowly); then, in order
of priority (screen shares before webcams), its lowest encoding at the highest
frame rate that fits; then what is left goes, again by priority, to the highest
rung each can take. A consumer keeps its current rung while that fits; it goes up
only with UP_MARGIN to spare, and the consumer itself waits UP_ROUNDS rounds
before it follows an upward aim, so that a noisy estimate does not flap layers.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

UP_MARGIN = 1.15
"""A higher rung is taken when the estimate has this much more than it costs."""
UP_ROUNDS = 2
"""Allocation rounds (seconds) a higher aim must hold before the consumer switches up."""
TEMPORAL_SHARES = {1: (1.0,), 2: (0.6, 1.0), 3: (0.4, 0.6, 1.0), 4: (0.25, 0.4, 0.6, 1.0)}
"""Share of an encoding's bitrate carried by temporal layers 0..t, by number of temporal layers."""

Rung = tuple[int, int]
"""(spatial layer, temporal layer); (-1, -1) when none of the encodings arrives."""
NONE: Rung = (-1, -1)


class Want(NamedTuple):
    """One video consumer as the allocator sees it."""

    priority: int
    layer_bitrates: Sequence[float]
    """Bit/s of each simulcast encoding as it arrives now; 0 for one not arriving."""
    max_layer: int
    current: int
    """The encoding it forwards now, -1 for none yet."""
    temporal_layers: int = 1
    max_temporal: int = 0
    """The highest temporal layer it may have (its preferred layers)."""
    current_temporal: int = 0


def rungs(want: Want) -> list[tuple[Rung, float]]:
    """Every rung of the consumer's ladder that arrives and is allowed, lowest first, with its bit/s."""
    shares = TEMPORAL_SHARES.get(want.temporal_layers, (1.0,))
    top = min(want.max_temporal, len(shares) - 1)
    ladder: list[tuple[Rung, float]] = []
    for spatial in range(min(want.max_layer, len(want.layer_bitrates) - 1) + 1):
        bitrate = want.layer_bitrates[spatial]
        if bitrate > 0:
            temporals = range(top + 1) if not ladder else (top,)
            ladder.extend(((spatial, temporal), bitrate * shares[temporal]) for temporal in temporals)
    return ladder


def allocate(budget: float, wants: Sequence[Want]) -> list[Rung]:
    """The rung each consumer should aim at."""
    ladders = [rungs(want) for want in wants]
    steps = [0] * len(wants)
    budget -= sum(ladder[0][1] for ladder in ladders if ladder)
    by_priority = sorted(range(len(wants)), key=lambda i: -wants[i].priority)
    for lowest_encoding_only in (True, False):
        for index in by_priority:
            budget = _climb(wants[index], ladders[index], steps, index, budget, lowest_encoding_only)
    return [ladder[step][0] if ladder else NONE for ladder, step in zip(ladders, steps)]


def _climb(want: Want, ladder: list[tuple[Rung, float]], steps: list[int], index: int, budget: float,
           lowest_encoding_only: bool) -> float:
    """Move consumer `index` up its ladder as far as the budget allows; what is left of the budget."""
    if not ladder:
        return budget
    current = (want.current, want.current_temporal)
    paid = ladder[steps[index]][1]
    for step in range(len(ladder) - 1, steps[index], -1):
        rung, bitrate = ladder[step]
        if lowest_encoding_only and rung[0] != ladder[0][0][0]:
            continue
        margin = 1.0 if rung <= current else UP_MARGIN
        if (bitrate - paid) * margin <= budget:
            steps[index] = step
            return budget - (bitrate - paid)
    return budget


def wanted_bitrate(wants: Sequence[Want]) -> float:
    """What it would take (with the margin) for every consumer to get the highest rung it may have."""
    return sum(ladder[-1][1] for ladder in map(rungs, wants) if ladder) * UP_MARGIN
