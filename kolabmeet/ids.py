"""Random ids and secrets of the control process, from kernel randomness read 4 KiB at a time.

Every connection token, socket and media object gets a random id; drawn one at a time
(`uuid.uuid4`, `secrets.token_hex`), each was a `getrandom` system call, a dozen per join. The
bytes are the kernel's cryptographic randomness all the same, each handed out once; a forked
child starts with a pool of its own, so that parent and child never share ids.
"""

from __future__ import annotations

import base64
import os

POOL_BYTES = 4096


class RandomPool:
    """Bytes from `os.urandom`, read POOL_BYTES at a time and each handed out once. For one thread:
    the control process's ids are all made on its event loop."""

    def __init__(self) -> None:
        self._pool = b""
        self._offset = 0

    def take(self, count: int) -> bytes:
        if count < 0:
            raise ValueError(f"cannot take {count} bytes")
        if self._offset + count > len(self._pool):
            self._pool, self._offset = os.urandom(max(POOL_BYTES, count)), 0
        start, self._offset = self._offset, self._offset + count
        return self._pool[start:self._offset]

    def forget(self) -> None:
        self._pool, self._offset = b"", 0


_pool = RandomPool()
os.register_at_fork(after_in_child=_pool.forget)


def random_bytes(count: int) -> bytes:
    return _pool.take(count)


def uuid4() -> str:
    """A random (version 4) UUID as text, as `str(uuid.uuid4())` gives it (RFC 9562 section 5.4:
    version 4 in the high nibble of byte 6, variant 10 in the high bits of byte 8)."""
    value = bytearray(_pool.take(16))
    value[6] = value[6] & 0x0F | 0x40
    value[8] = value[8] & 0x3F | 0x80
    text = value.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def token_hex(nbytes: int) -> str:
    """`nbytes` random bytes as hex, as `secrets.token_hex` gives them."""
    return _pool.take(nbytes).hex()


def session_id() -> str:
    """A 120-bit id in URL-safe base64 (20 characters), the shape of engine.io's session ids."""
    return base64.urlsafe_b64encode(_pool.take(15)).decode()
