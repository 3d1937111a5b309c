"""Both twins of the consumer core (consumer_core.py and _consumer_core.c) on the same packets.

Each twin drives a consumer of the same state through the same random stream of packets (layers,
key frames, payload types, sequence jumps, VP8 pictures, MID and transport-wide slots, pauses,
syncs); the packets handed to the transport, the retransmission copies and the state after every
packet must be the same. The transport here records what it is given: the core's contract ends there.
"""

from __future__ import annotations

import random
import struct

import pytest

from kolabmeet.media.worker import consumer_core
from kolabmeet.media.worker.retransmission import PyRetransmissionBuffer
from kolabmeet.media.worker.rtp import MID_SLOT, mid_elements
from kolabmeet.media.worker.send_history import PySendHistory
from kolabmeet.media.worker.vp8 import PyVp8Rewriter, read_picture

from tests.media.worker.twins import compiled_twin

_consumer_core = compiled_twin("_consumer_core")

needs_c = pytest.mark.skipif(_consumer_core is None, reason="the C twin was not built")
MID_AT = 12 + 4 + 1  # one-byte form: MID element first, then transport-wide cc
TWCC_AT = MID_AT + MID_SLOT + 1


class RecordingTransport:
    def __init__(self, accept: bool = True) -> None:
        self.history = PySendHistory()
        self.next_twcc_seq = self.history.next
        self.sent: list[tuple] = []
        self.accept = accept

    def send_rtp(self, view, ext_map=None, priority=1, paced=True, now=0.0, twcc_seq=-1) -> bool:
        self.sent.append((bytes(view), ext_map, priority, paced, now, twcc_seq))
        return self.accept


class Stream:
    last_time = 0.0


class Producer:
    """The per-packet values a producer sets before its fan-out."""

    def __init__(self) -> None:
        self.now = 100.0
        self.vp8_picture = None
        self.mid_at = self.twcc_at = -1
        self.mid_two_byte = 0
        self.layer_streams = [Stream(), Stream()]


def consumer_class(core: type) -> type:
    class Consumer(core):
        """The consumer's own steps, as consumer.py has them (notifications left out)."""

        def __init__(self, producer: Producer, transport: RecordingTransport, rng: random.Random) -> None:
            self.producer, self.transport = producer, transport
            self.active, self.ssrc, self.priority = True, 0xCAFE0001, 1
            self.ext_map = None
            self.rtx_buffer = PyRetransmissionBuffer(size=64)
            self.current_layer, self.target_layer = -1, 1
            self.last_seq, self.last_ts, self.last_sent = 500, 90000, 0.0
            self.packets = self.bytes = 0
            self._pt_map = bytes(96) + bytes([100]) + bytes(31) + bytes(96) + bytes([228]) + bytes(31)
            self._is_video, self._sync_needed, self._sync_seq = True, True, 0
            self._seq_off = self._ts_off = 0
            self._vp8 = PyVp8Rewriter()
            self._mid = mid_elements(b"3", 3)
            self._writes_twcc = True
            self._silent_since = 0.0
            self.events: list[tuple] = []

        def _switch_layer(self, layer: int) -> None:
            self.events.append(("switch", layer))
            self.current_layer = layer
            self._sync_needed = True

        def _fall_back(self, layer: int) -> None:
            self.events.append(("fall back", layer))
            self.target_layer = layer
            self._silent_since = 0

        def _sync(self, seq: int, ts: int) -> None:
            self.events.append(("sync", seq, ts))
            self._seq_off = (self.last_seq + 1 - seq) & 0xFFFF
            self._ts_off = (self.last_ts + 3000 - ts) & 0xFFFFFFFF
            self._sync_seq = seq
            self._sync_needed = False
            self._vp8.sync()

    return Consumer


def packet(rng: random.Random, seq: int, ts: int, pic: int, with_extensions: bool) -> bytearray:
    """A VP8 packet with a 15-bit PictureID (and, maybe, a MID slot and a transport-wide slot)."""
    extension = b""
    if with_extensions:
        elements = bytes([3 << 4 | MID_SLOT - 1]) + b"x" * MID_SLOT + bytes([5 << 4 | 1]) + b"\0\0"
        elements += b"\0" * (-len(elements) % 4)
        extension = struct.pack("!HH", 0xBEDE, len(elements) // 4) + elements
    first = 0x90 if extension else 0x80
    tid = rng.choice((0, 1, 2))
    descriptor = bytes([0x90, 0xE0, 0x80 | pic >> 8, pic & 0xFF, rng.randrange(256), tid << 6 | 0x20])
    return bytearray(struct.pack("!BBHII", first, 96, seq, ts, 0x1111) + extension + descriptor + b"\x31\x0b\x00")


def run(core: type, fan_out, seed: int, steps: int = 3000) -> list:
    """Everything observable from one twin over a random packet stream."""
    rng = random.Random(seed)
    producer = Producer()
    transports = [RecordingTransport(), RecordingTransport(accept=False)]
    consumers = tuple(consumer_class(core)(producer, transport, rng) for transport in transports)
    seen = []
    seq, ts, pic = 1000, 5000, 300
    for step in range(steps):
        roll = rng.random()
        if roll < 0.02:
            seq = rng.randrange(65536)
        elif roll < 0.04:
            consumers[0].active = not consumers[0].active
        elif roll < 0.05:
            consumers[1]._sync_needed = True
        elif roll < 0.06:
            consumers[0]._vp8.max_temporal_layer = rng.randrange(0, 4)
        with_extensions = rng.random() < 0.7
        buf = packet(rng, seq, ts, pic, with_extensions)
        length = len(buf)
        buf.extend(bytes(64))
        producer.now += rng.random() * 0.3
        producer.layer_streams[1].last_time = producer.now - rng.choice((0.0, 0.7))
        producer.mid_at, producer.twcc_at = (MID_AT, TWCC_AT) if with_extensions else (-1, -1)
        producer.vp8_picture = read_picture(buf, length - 9, length)
        marked_pt = rng.choice((96, 96, 96, 0x80 | 96, 97))
        keyframe, layer = rng.random() < 0.1, rng.choice((0, 1, 1, 1))
        fan_out(consumers, buf, memoryview(buf)[:length], length, marked_pt, seq, ts, keyframe, layer, producer)
        seen.append(bytes(buf[:length]))
        for consumer in consumers:
            seen.append(tuple(getattr(consumer, name) for name in consumer_core.FIELDS
                              if name not in ("producer", "transport", "rtx_buffer", "_vp8", "_mid")))
        if rng.random() < 0.95:
            seq = (seq + 1) & 0xFFFF
        ts = (ts + rng.choice((0, 3000))) & 0xFFFFFFFF
        pic = (pic + 1) & 0x7FFF
    for consumer in consumers:
        seen.append((consumer.events, consumer.transport.sent))
        seen.append([consumer.rtx_buffer.get(s, producer.now * 1000) for s in range(65536)
                     if consumer.rtx_buffer.get(s, producer.now * 1000) is not None])
    return seen


@needs_c
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_both_twins_forward_the_same_packets_the_same_way(seed: int) -> None:
    python = run(consumer_core.PyConsumerCore, consumer_core.py_fan_out, seed)
    compiled = run(_consumer_core.ConsumerCore, _consumer_core.fan_out, seed)
    assert len(python) == len(compiled)
    for index, (a, b) in enumerate(zip(python, compiled)):
        assert a == b, f"differs at {index}"
    events, sent = python[-4]
    assert len(sent) > 100, "the stream was forwarded (not all dropped)"
    assert {event[0] for event in events} == {"switch", "sync", "fall back"}, "every rare step was taken"


@needs_c
def test_send_rtp_called_alone_is_fan_out_of_one() -> None:
    rng = random.Random(4)
    results = []
    for core in (consumer_core.PyConsumerCore, _consumer_core.ConsumerCore):
        producer, transport = Producer(), RecordingTransport()
        consumer = consumer_class(core)(producer, transport, rng)
        consumer.current_layer = consumer.target_layer = 0
        buf = packet(random.Random(5), 7, 9, 11, True)
        producer.mid_at, producer.twcc_at = MID_AT, TWCC_AT
        producer.vp8_picture = read_picture(buf, len(buf) - 9, len(buf))
        consumer.send_rtp(buf, memoryview(buf), len(buf), 96, 7, 9, True, 0)
        results.append((bytes(buf), transport.sent, consumer.events, consumer.last_seq, consumer.packets))
    assert results[0] == results[1]
    assert results[0][1], "sent"


def test_a_consumer_that_forwards_its_own_way_is_called_as_it_is() -> None:
    """A pipe consumer overrides send_rtp: fan_out calls it (both twins)."""
    cores = [consumer_core.PyConsumerCore] + ([_consumer_core.ConsumerCore] if _consumer_core else [])
    fan_outs = [consumer_core.py_fan_out] + ([_consumer_core.fan_out] if _consumer_core else [])
    for core, fan_out in zip(cores, fan_outs):
        calls = []

        class Own(core):
            def send_rtp(self, *args):
                calls.append(args[2:])

        buf = bytearray(packet(random.Random(6), 1, 2, 3, False))
        fan_out((Own(),), buf, memoryview(buf), len(buf), 96, 1, 2, False, 0, Producer())
        assert calls == [(len(buf), 96, 1, 2, False, 0)]


@needs_c
def test_the_twins_agree_on_fields_and_constants() -> None:
    members = {name for name in dir(_consumer_core.ConsumerCore) if not name.startswith("__")}
    assert set(consumer_core.FIELDS) <= members
    assert _consumer_core.MID_SLOT == MID_SLOT
    assert _consumer_core.SYNC_WINDOW == consumer_core.SYNC_WINDOW
    assert _consumer_core.LAYER_SILENCE == consumer_core.LAYER_SILENCE
    assert _consumer_core.SILENCE_CONFIRM == consumer_core.SILENCE_CONFIRM


@needs_c
def test_a_core_without_its_producer_or_transport_raises_rather_than_crashes() -> None:
    core = _consumer_core.ConsumerCore()
    core.active = True
    buf = packet(random.Random(8), 1, 2, 3, False)
    with pytest.raises(TypeError):
        core.send_rtp(buf, memoryview(buf), len(buf), 96, 1, 2, False, 0)
    with pytest.raises(TypeError):
        _consumer_core.fan_out((core,), buf, memoryview(buf), len(buf), 96, 1, 2, False, 0, Producer())
    with pytest.raises(TypeError):
        core._target_silent()
    core.active = False
    assert core.send_rtp(buf, memoryview(buf), len(buf), 96, 1, 2, False, 0) is None
