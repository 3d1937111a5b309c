"""Who speaks in a router: the loudest audio producer, held for a moment before it counts.

Senders put their microphone's level in every audio packet (RFC 6464,
ssrc-audio-level: 0 is the loudest, 127 silence, in -dBov). Producers sum what
they see; every INTERVAL the observer takes each producer's mean (a producer
that sent nothing, as with DTX, is silent), and a producer that is the loudest
above THRESHOLD for HOLD intervals in a row becomes the active speaker: a cough
or a door does not switch it. A change is told as the router event
"activespeaker" {producerId}, so at most once per INTERVAL.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from kolabmeet.media.worker.producer import Producer

INTERVAL = 0.3
HOLD = 3
"""Intervals a new speaker must be the loudest (0.9 s) before it counts."""
THRESHOLD = 70
"""Levels (-dBov) above this mean are silence."""
SILENT = 127


class ActiveSpeakerObserver:
    """Watches the audio producers of one router."""

    def __init__(self, router_id: str, producers: dict[str, "Producer"],
                 notify: Callable[[str, str, Any], None]) -> None:
        self.router_id = router_id
        self.producers = producers
        self.speaker: str | None = None
        self._notify = notify
        self._candidate: str | None = None
        self._rounds = 0
        self._timer = asyncio.get_running_loop().call_later(INTERVAL, self._tick)

    def _tick(self) -> None:
        self._timer = asyncio.get_running_loop().call_later(INTERVAL, self._tick)
        loudest, loudest_level = None, THRESHOLD
        for producer in self.producers.values():
            level = producer.take_audio_level()
            if level < loudest_level:
                loudest, loudest_level = producer.id, level
        if loudest is None or loudest == self.speaker:
            self._candidate, self._rounds = None, 0
            return
        if loudest != self._candidate:
            self._candidate, self._rounds = loudest, 0
        self._rounds += 1
        if self._rounds >= HOLD:
            self.speaker, self._candidate, self._rounds = loudest, None, 0
            self._notify(self.router_id, "activespeaker", {"producerId": loudest})

    def close(self) -> None:
        self._timer.cancel()
