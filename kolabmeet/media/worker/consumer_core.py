"""What a consumer does with each packet of its producer: the forwarding rules, in one place.

:class:`Consumer` (consumer.py) is built on :class:`ConsumerCore`: the state the hot path reads
and writes, and :meth:`~PyConsumerCore.send_rtp`, which takes or drops a packet (layer,
(re)start on a key frame, packets from before the start), rewrites the shared buffer's
header for this receiver (payload type, sequence number, timestamp, SSRC, VP8 picture
values, MID, transport-wide sequence number), keeps a copy for retransmission and hands
it to the transport. The rarer steps (switching layer, falling back, syncing) are the
consumer's own methods, called from here. :func:`fan_out` hands one packet to each of a
producer's consumers.

It has a compiled twin (``_consumer_core.c``, see compiled.py): the same fields, the same
rules; ``tests/media/worker/test_consumer_core.py`` runs both on the same packets.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any, Callable, Iterable

from kolabmeet.media.worker import compiled
from kolabmeet.media.worker.rtp import MID_SLOT

if TYPE_CHECKING:
    from kolabmeet.media.worker.producer import Producer

_SEQ_TS_SSRC = struct.Struct("!HII")
SYNC_WINDOW = 0x4000
"""How far behind the newest packet a late one (a sender's retransmission) is still forwarded."""
LAYER_SILENCE = 0.5
"""Seconds without a packet of the simulcast layer aimed at, while a lower one arrives, before falling back."""
SILENCE_CONFIRM = 0.1
"""Seconds the lower layer must go on arriving alone after that: a stall of the whole path (its packets then
come in one burst, the layer aimed at among them) is no reason to fall back."""

FIELDS = ("producer", "transport", "active", "ssrc", "priority", "ext_map", "rtx_buffer", "current_layer",
          "target_layer", "last_seq", "last_ts", "last_sent", "packets", "bytes", "_pt_map", "_is_video",
          "_sync_needed", "_sync_seq", "_seq_off", "_ts_off", "_vp8", "_mid", "_writes_twcc", "_silent_since")
"""The state both twins keep (the compiled one as C fields)."""


class PyConsumerCore:
    """The hot-path state and forwarding rules of a consumer; subclasses provide ``_switch_layer(layer)``,
    ``_fall_back(layer)`` and ``_sync(seq, ts)``."""

    __slots__ = FIELDS

    producer: Any
    transport: Any
    # the subclass's steps (consumer.Consumer has them), declared for type checkers only
    _switch_layer: Callable[[int], None]
    _fall_back: Callable[[int], None]
    _sync: Callable[[int, int], None]

    def send_rtp(self, buf: bytearray, view: memoryview, length: int, marked_pt: int,
                 seq: int, ts: int, keyframe: bool, layer: int) -> None:
        """Hot path: rewrite the shared buffer's header for this consumer and send it."""
        if not self.active:
            return
        pt = self._pt_map[marked_pt]
        if pt == 0:
            return
        if layer != self.current_layer:
            if layer != self.target_layer or not keyframe:
                if layer < self.target_layer and self.current_layer >= 0 and self._target_silent():
                    self._fall_back(layer)
                return
            self._switch_layer(layer)
        if self._sync_needed:
            if self._is_video and not keyframe:
                return
            self._sync(seq, ts)
        else:
            since = (seq - self._sync_seq) & 0xFFFF
            if since >= 0x8000:
                return  # from before the stream (re)started here
            if since > SYNC_WINDOW:
                self._sync_seq = (seq - SYNC_WINDOW) & 0xFFFF  # follows the stream, so it never looks old
        producer = self.producer
        vp8 = self._vp8
        if vp8 is not None and not vp8.rewrite(buf, producer.vp8_picture):
            self._seq_off = (self._seq_off - 1) & 0xFFFF
            return
        out_seq = (seq + self._seq_off) & 0xFFFF
        out_ts = (ts + self._ts_off) & 0xFFFFFFFF
        buf[1] = pt
        _SEQ_TS_SSRC.pack_into(buf, 2, out_seq, out_ts, self.ssrc)
        now = producer.now
        # The per-consumer header extension values: MID and the transport-wide sequence number.
        mid_at = producer.mid_at
        if mid_at > 0 and self._mid is not None:
            buf[mid_at - 1:mid_at + MID_SLOT] = self._mid[producer.mid_two_byte]
        twcc_seq = -1
        twcc_at = producer.twcc_at
        if twcc_at > 0 and self._writes_twcc:
            twcc_seq = self.transport.next_twcc_seq(length, now)
            buf[twcc_at] = twcc_seq >> 8
            buf[twcc_at + 1] = twcc_seq & 0xFF
        if self.rtx_buffer is not None:
            self.rtx_buffer.store(out_seq, view, now * 1000)
        if self.transport.send_rtp(view, self.ext_map, self.priority, True, now, twcc_seq):
            self.packets += 1
            self.bytes += length
        if ((out_seq - self.last_seq) & 0xFFFF) < 0x8000:
            self.last_seq = out_seq
            self.last_ts = out_ts
            self.last_sent = now

    def _target_silent(self) -> bool:
        """Whether the layer aimed at has been silent for LAYER_SILENCE, then SILENCE_CONFIRM more."""
        now = self.producer.now
        stream = self.producer.layer_streams[self.target_layer]
        if stream is not None and now - stream.last_time <= LAYER_SILENCE:
            self._silent_since = 0.0
            return False
        if not self._silent_since:
            self._silent_since = now
            return False
        return now - self._silent_since >= SILENCE_CONFIRM


def py_fan_out(consumers: Iterable[Any], buf: bytearray, view: memoryview, length: int, marked_pt: int,
               seq: int, ts: int, keyframe: bool, layer: int, producer: "Producer") -> None:
    """Hot path: one packet of ``producer`` to each of its consumers (``send_rtp``)."""
    for consumer in consumers:
        consumer.send_rtp(buf, view, length, marked_pt, seq, ts, keyframe, layer)


_c = compiled.load("_consumer_core")
if _c is None:
    ConsumerCore: type = PyConsumerCore
    fan_out = py_fan_out
else:
    ConsumerCore, fan_out = _c.ConsumerCore, _c.fan_out
