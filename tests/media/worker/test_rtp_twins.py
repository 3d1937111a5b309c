"""rtp.py's pure-Python functions against their compiled twins (_rtp.c) on the same random packets."""

from __future__ import annotations

import random
import struct

import pytest

from kolabmeet.media.worker import rtp
from tests.media.worker.twins import compiled_twin

_rtp = compiled_twin("_rtp")
pytestmark = pytest.mark.skipif(_rtp is None, reason="the C twin was not built")
SLOTS = ((3, 8), (2, 3), (5, 2))


def packet(rng: random.Random) -> bytearray:
    """An RTP packet: CSRCs, a one-byte, two-byte or unknown-profile block (or none), padding; sometimes damaged."""
    csrcs = rng.choice((0, 0, 0, 2))
    elements = b""
    profile = rng.choice((0xBEDE, 0xBEDE, 0x1000, 0x1003, 0x1234))
    for _ in range(rng.randrange(0, 5)):
        xid, size = rng.randrange(1, 15), rng.randrange(1, 9)
        value = bytes(rng.randrange(256) for _ in range(size))
        elements += (bytes([xid << 4 | size - 1]) if profile == 0xBEDE else bytes([xid, size])) + value
        elements += b"\0" * rng.randrange(0, 2)
    elements += b"\0" * (-len(elements) % 4)
    with_block = rng.random() < 0.85
    first = 0x80 | csrcs | (0x10 if with_block else 0)
    body = struct.pack("!BBHII", first, 96, rng.randrange(65536), rng.randrange(1 << 32), 0x1234)
    body += bytes(4 * csrcs)
    if with_block:
        body += struct.pack("!HH", profile, len(elements) // 4) + elements
    payload = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
    if rng.random() < 0.2:
        padding = rng.randrange(1, 8)
        payload += bytes(padding - 1) + bytes([padding])
        body = bytes([body[0] | 0x20]) + body[1:]
    data = bytearray(body + payload)
    if rng.random() < 0.25 and len(data) > 12:  # damage: a byte anywhere, or a shorter datagram
        data[rng.randrange(len(data))] = rng.randrange(256)
    return data


def twins(name: str):
    return rtp.PY_TWINS[name], getattr(_rtp, name)


def test_map_extensions_finds_and_maps_alike() -> None:
    rng = random.Random(1)
    python, compiled = twins("map_extensions")
    for _ in range(5000):
        data = packet(rng)
        length = len(data) - rng.choice((0, 0, 0, 3))
        id_map = bytes(rng.choice((0, rng.randrange(1, 15), rng.randrange(15, 256))) for _ in range(256)) \
            if rng.random() < 0.5 else None
        wanted = tuple(rng.randrange(0, 15) for _ in range(3))
        a, b = bytearray(data), bytearray(data)
        assert python(a, length, id_map, wanted) == compiled(b, length, id_map, wanted)
        assert a == b


def test_add_extension_slots_grows_packets_alike() -> None:
    rng = random.Random(2)
    python, compiled = twins("add_extension_slots")
    finder = rtp.PY_TWINS["map_extensions"]
    grown = 0
    for _ in range(5000):
        data = packet(rng)
        length = len(data)
        slots = tuple(slot if rng.random() < 0.7 else None for slot in SLOTS)
        found = finder(bytearray(data), length, None, (3, 2, 5))
        capacity = rng.choice((length + 64, length + 8, length))
        a, b = bytearray(data) + bytes(128), bytearray(data) + bytes(128)
        results = python(a, length, slots, found, capacity), compiled(b, length, slots, found, capacity)
        assert results[0] == results[1]
        assert a == b
        grown += results[0] > length
    assert grown > 1000, "slots were added"


def test_bounds_sizes_forms_and_send_times_alike() -> None:
    rng = random.Random(3)
    finder = rtp.PY_TWINS["map_extensions"]
    for _ in range(5000):
        data = bytes(packet(rng))
        length = len(data)
        assert rtp.PY_TWINS["payload_bounds"](data, length) == _rtp.payload_bounds(data, length)
        found = [at for at in finder(bytearray(data), length, None, (3, 2, 5)) if at > 0]
        for at in found:
            assert rtp.PY_TWINS["extension_size"](data, at) == _rtp.extension_size(data, at)
            assert rtp.PY_TWINS["is_two_byte_form"](data) == _rtp.is_two_byte_form(data)
            seconds = rng.uniform(-10, 1e6)
            a, b = bytearray(data), bytearray(data)
            rtp.PY_TWINS["set_abs_send_time"](a, at, seconds)
            _rtp.set_abs_send_time(b, at, seconds)
            assert a == b


def test_the_compiled_twins_refuse_what_they_cannot_read() -> None:
    with pytest.raises(ValueError):
        _rtp.map_extensions(bytearray(20), 20, b"\x01", (0, 0, 0))
    with pytest.raises(IndexError):
        _rtp.extension_size(b"\x90" + bytes(11), 40)
    with pytest.raises(ValueError):
        _rtp.set_abs_send_time(bytearray(20), 12, float("nan"))
    assert _rtp.payload_bounds(b"\x80", 1) == (-1, -1)
