"""Sharing a transport's estimated outgoing bitrate among its consumers' simulcast layers.

Audio is never cut, so its bitrate comes off the estimate first. Then every video
consumer gets its lowest arriving layer (a picture for everyone), and what is left
goes, in order of priority (screen shares before webcams), to the highest layer
each can take. A consumer keeps its current layer while that fits; it goes up
only with UP_MARGIN to spare, and the consumer itself waits UP_ROUNDS rounds
before it follows an upward aim, so that a noisy estimate does not flap layers.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

UP_MARGIN = 1.15
"""A higher layer is taken when the estimate has this much more than it costs."""
UP_ROUNDS = 2
"""Allocation rounds (seconds) a higher aim must hold before the consumer switches up."""


class Want(NamedTuple):
    """One video consumer as the allocator sees it."""

    priority: int
    layer_bitrates: Sequence[float]
    """Bit/s of each simulcast layer as it arrives now; 0 for a layer not arriving."""
    max_layer: int
    current: int
    """The layer it forwards now, -1 for none yet."""


def allocate(budget: float, wants: Sequence[Want]) -> list[int]:
    """The layer each consumer should aim at (-1 when none of its layers arrives)."""
    aims = [_lowest(want) for want in wants]
    budget -= sum(want.layer_bitrates[aim] for want, aim in zip(wants, aims) if aim >= 0)
    for index in sorted(range(len(wants)), key=lambda i: -wants[i].priority):
        want, aim = wants[index], aims[index]
        if aim < 0:
            continue
        for layer in range(min(want.max_layer, len(want.layer_bitrates) - 1), aim, -1):
            extra = want.layer_bitrates[layer] - want.layer_bitrates[aim]
            margin = 1.0 if layer <= want.current else UP_MARGIN
            if want.layer_bitrates[layer] > 0 and extra * margin <= budget:
                budget -= extra
                aims[index] = layer
                break
    return aims


def wanted_bitrate(wants: Sequence[Want]) -> float:
    """What it would take (with the margin) for every consumer to get the highest layer it may have."""
    total = 0.0
    for want in wants:
        arriving = [b for b in want.layer_bitrates[:want.max_layer + 1] if b > 0]
        total += max(arriving, default=0.0)
    return total * UP_MARGIN


def _lowest(want: Want) -> int:
    return next((layer for layer, bitrate in enumerate(want.layer_bitrates) if bitrate > 0), -1)
