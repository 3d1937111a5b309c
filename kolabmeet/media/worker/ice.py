"""ICE-lite state of one WebRTC transport: credentials, valid tuples, the selected one, consent."""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from typing import Callable

from kolabmeet.media.worker.tuple import Tuple

CONSENT_TIMEOUT = 30.0


def random_credential(length: int) -> str:
    """`length` characters of a-z and 2-7 (ice-char, RFC 8839 section 5.4), 5 random bits
    each, from one read of the system's random source (a choice per character was a system call
    per character: 48 per transport)."""
    return base64.b32encode(secrets.token_bytes((length * 5 + 7) // 8)).decode()[:length].lower()


class IceLite:
    """Tracks what the remote's connectivity checks proved.

    States: "new" (no valid check yet), "connected" (a valid check, no
    nomination), "completed" (a tuple nominated with USE-CANDIDATE),
    "disconnected" (no valid check for CONSENT_TIMEOUT), "closed".
    """

    def __init__(self, on_state: Callable[[str], None], on_selected: Callable[[Tuple], None],
                 on_tuple_removed: Callable[[Tuple], None]) -> None:
        self.ufrag = random_credential(16)
        self.password = random_credential(32)
        self.state = "new"
        self.tuples: list[Tuple] = []
        self.selected: Tuple | None = None
        self._on_state = on_state
        self._on_selected = on_selected
        self._on_tuple_removed = on_tuple_removed
        self._last_check = 0.0
        self._consent_timer: asyncio.TimerHandle | None = None

    def parameters(self) -> dict[str, object]:
        return {"usernameFragment": self.ufrag, "password": self.password, "iceLite": True}

    def restart(self) -> None:
        """New credentials; tuples stay until the remote's checks use the new ones."""
        self.ufrag = random_credential(16)
        self.password = random_credential(32)

    def valid_check(self, tuple_: Tuple, nominated: bool) -> None:
        """A binding request on `tuple_` passed the integrity check."""
        self._last_check = time.monotonic()
        self._arm_consent()
        if tuple_ not in self.tuples:
            self.tuples.append(tuple_)
        if nominated or self.selected is None:
            if self.selected is not tuple_:
                self.selected = tuple_
                self._on_selected(tuple_)
        self._set_state("completed" if nominated or self.state == "completed" else "connected")

    def remove_tuple(self, tuple_: Tuple) -> None:
        """A tuple went away (a TCP connection closed)."""
        if tuple_ not in self.tuples:
            return
        self.tuples.remove(tuple_)
        self._on_tuple_removed(tuple_)
        if self.selected is tuple_:
            self.selected = self.tuples[-1] if self.tuples else None
            if self.selected is not None:
                self._on_selected(self.selected)
            else:
                self._set_state("disconnected")

    def _arm_consent(self) -> None:
        if self._consent_timer is None:
            self._consent_timer = asyncio.get_running_loop().call_later(CONSENT_TIMEOUT, self._check_consent)

    def _check_consent(self) -> None:
        self._consent_timer = None
        if self.state == "closed":
            return
        idle = time.monotonic() - self._last_check
        if idle >= CONSENT_TIMEOUT:
            self._set_state("disconnected")
            return
        self._consent_timer = asyncio.get_running_loop().call_later(CONSENT_TIMEOUT - idle, self._check_consent)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self._on_state(state)

    def close(self) -> None:
        if self._consent_timer is not None:
            self._consent_timer.cancel()
        for tuple_ in self.tuples:
            self._on_tuple_removed(tuple_)
        self.tuples.clear()
        self.selected = None
        self.state = "closed"
