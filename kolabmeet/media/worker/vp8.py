"""VP8 payload descriptor (RFC 7741 section 4.2) parsing and per-consumer rewriting.

Offsets are absolute indexes into the packet buffer; ``start``/``end`` are the RTP
payload bounds (as from :func:`kolabmeet.media.worker.rtp.payload_bounds`)::

    X R N S R PID     first octet (X: extension octet present; S: partition start; PID: partition index)
    I L T K RSV       extension octet
    M PictureID       7 bits, or 15 bits when M=1 (present when I=1)
    TL0PICIDX         present when L=1
    TID Y KEYIDX      present when T=1 or K=1 (TID: 2 bits, Y: 1 bit, KEYIDX: 5 bits)

Why rewrite: libwebrtc's receiver builds frame dependencies from PictureID (one per
picture, +1 each) and TL0PICIDX (+1 per temporal-layer-0 picture). When the SFU switches
a consumer to another simulcast encoding, that encoding's values are unrelated to the
ones sent so far; when it drops higher temporal layers, PictureIDs go missing. Either
way the receiver sees a jump, takes it as loss and asks for a key frame (or stalls).
:class:`Vp8Rewriter` therefore rewrites, in place and in the width already in the
packet, PictureID as source + offset (less one per dropped picture) and TL0PICIDX as
source + offset, with both offsets set at each :meth:`Vp8Rewriter.sync` so that the
next picture follows the last one sent. KEYIDX, TID and Y are left as they are.

A producer reads each packet's :class:`Vp8Picture` once (:func:`read_picture`); every
consumer's rewriter then writes its own values from it into the buffer they share, so
nothing is put back between consumers (:func:`restore_picture` is for a pipe, which
forwards the source values). The rewriter has a compiled twin (``_vp8.c``, see compiled.py).
"""

from __future__ import annotations

from typing import NamedTuple, Union

from kolabmeet.media.worker import compiled

Buffer = Union[bytes, bytearray, memoryview]

MAX_TEMPORAL_LAYER = 3
"""The highest TID the descriptor can carry: a :class:`Vp8Rewriter` with it filters nothing."""
_HISTORY = 128
"""Pictures remembered (by source PictureID modulo this) so retransmissions map as first sent."""
_EMPTY = [-1] * _HISTORY


class Vp8Descriptor(NamedTuple):
    """Where the fields of one descriptor are; -1 (or 0 bits) for those absent."""

    start_of_partition: bool  # S
    partition_index: int  # PID, 0-7
    picture_id_at: int  # first octet of PictureID (the one with the M bit)
    picture_id_bits: int  # 7, 15, or 0 when absent
    tl0picidx_at: int
    tid: int  # temporal layer id 0-3, -1 when T=0
    layer_sync: bool  # Y (False when T=0)
    keyidx_at: int  # octet whose low 5 bits are KEYIDX (K=1)
    payload_at: int  # first octet of the VP8 payload; -1 only in MALFORMED


MALFORMED = Vp8Descriptor(False, -1, -1, 0, -1, -1, False, -1, -1)
"""Returned for out-of-range bounds or a truncated descriptor (one with no payload after it)."""


def parse_descriptor(buf: Buffer, start: int, end: int) -> Vp8Descriptor:
    """Locate the descriptor fields of the payload ``buf[start:end]``; MALFORMED, never raises, on bad input."""
    if start < 0 or end > len(buf) or end - start < 2:
        return MALFORMED
    b0 = buf[start]
    pos = start + 1
    pic_at = tl0_at = tid = key_at = -1
    pic_bits = 0
    layer_sync = False
    if b0 & 0x80:
        ext = buf[pos]
        pos += 1
        if ext & 0x80:
            if pos >= end:
                return MALFORMED
            pic_at = pos
            pic_bits = 15 if buf[pos] & 0x80 else 7
            pos += 2 if pic_bits == 15 else 1
        if ext & 0x40:
            tl0_at = pos
            pos += 1
        if ext & 0x30:
            if pos >= end:
                return MALFORMED
            if ext & 0x20:
                tid = buf[pos] >> 6
                layer_sync = bool(buf[pos] & 0x20)
            if ext & 0x10:
                key_at = pos
            pos += 1
    if pos >= end:
        return MALFORMED
    return Vp8Descriptor(bool(b0 & 0x10), b0 & 0x07, pic_at, pic_bits, tl0_at, tid, layer_sync, key_at, pos)


class Vp8Picture(NamedTuple):
    """What consumers rewrite in one packet's descriptor: where PictureID and TL0PICIDX are (-1: absent) and
    their source values, read once for all consumers before any of them writes."""

    picture_id_at: int
    wide: int  # 0x80 for a 15-bit PictureID, else 0
    picture_id: int
    tl0picidx_at: int
    tl0picidx: int
    tid: int  # -1 when T=0
    layer_sync: int  # the Y bit (0x20) when TID > 0, else 0


def read_picture(buf: Buffer, start: int, end: int) -> Vp8Picture | None:
    """The fields of payload ``buf[start:end]`` to rewrite; None when there is nothing to (no extension
    octet, a truncated descriptor or bad bounds): such packets go as they are."""
    if start < 0 or end > len(buf) or end - start < 3 or not buf[start] & 0x80:
        return None
    ext = buf[start + 1]
    pos = start + 2
    pic_at = tl0_at = -1
    if ext & 0x80:
        pic_at = pos
        pos += 2 if buf[pos] & 0x80 else 1
    if ext & 0x40:
        tl0_at = pos
        pos += 1
    tk_at = pos
    if ext & 0x30:
        pos += 1
    if pos >= end:
        return None
    pic = wide = 0
    if pic_at >= 0:
        pic = buf[pic_at]
        wide = pic & 0x80
        if wide:
            pic = (pic & 0x7F) << 8 | buf[pic_at + 1]
    tl0 = buf[tl0_at] if tl0_at >= 0 else 0
    tid = buf[tk_at] >> 6 if ext & 0x20 else -1
    layer_sync = buf[tk_at] & 0x20 if tid > 0 else 0
    return Vp8Picture(pic_at, wide, pic, tl0_at, tl0, tid, layer_sync)


def restore_picture(buf: bytearray, picture: Vp8Picture | None) -> None:
    """Write the source PictureID and TL0PICIDX back (for what forwards the packet unchanged)."""
    if picture is None:
        return
    at = picture.picture_id_at
    if at >= 0:
        if picture.wide:
            buf[at] = 0x80 | picture.picture_id >> 8
            buf[at + 1] = picture.picture_id & 0xFF
        else:
            buf[at] = picture.picture_id
    if picture.tl0picidx_at >= 0:
        buf[picture.tl0picidx_at] = picture.tl0picidx


class PyVp8Rewriter:
    """Keeps one consumer's PictureID and TL0PICIDX continuous across stream switches and dropped pictures.

    Per packet: ``rewrite`` it (drop it when that returns False), then send it.
    ``sync`` on every (re)start or switch of source stream, before the key
    frame that begins it; a new rewriter starts synced. Until a first picture has been sent
    the source values are kept as they are.
    """

    __slots__ = ("_max_temporal", "_temporal", "_pic_pending", "_pic_off", "_last_pic", "_newest", "_src", "_out",
                 "_tl0_pending", "_tl0_off", "_last_tl0")

    def __init__(self) -> None:
        self._max_temporal = self._temporal = MAX_TEMPORAL_LAYER
        self._last_pic = self._last_tl0 = -1  # last sent (newest picture); -1: nothing sent yet
        self._pic_off = self._tl0_off = self._newest = 0
        self._pic_pending = self._tl0_pending = True
        self._src = list(_EMPTY)  # source PictureID of the picture in each history slot
        self._out = list(_EMPTY)  # its output PictureID, -1 if dropped

    @property
    def max_temporal_layer(self) -> int:
        """Pictures with a higher TID are dropped (0..3).

        Lowering it takes effect at once; raising it at the next picture of a higher
        layer that is a layer sync (Y bit: it references the base layer only), or at the
        next sync(), since the dropped pictures cannot serve as references.
        """
        return self._max_temporal

    @max_temporal_layer.setter
    def max_temporal_layer(self, layer: int) -> None:
        self._max_temporal = layer
        self._temporal = min(self._temporal, layer)

    def sync(self) -> None:
        """Make the next picture follow the last one sent (PictureID and TL0PICIDX + 1); a key frame follows."""
        self._pic_pending = self._tl0_pending = True
        self._src[:] = _EMPTY
        self._temporal = self._max_temporal

    def rewrite(self, buf: bytearray, picture: Vp8Picture | None) -> bool:
        """Write this consumer's PictureID and TL0PICIDX for ``picture`` into ``buf``; False: drop the packet.

        Dropped: packets whose TID is above ``max_temporal_layer`` and every later packet of
        such a picture. Left untouched (True): packets with no picture to rewrite (None).
        """
        if picture is None:
            return True
        pic_at, wide, src, tl0_at, tl0, tid, layer_sync = picture
        if pic_at < 0:
            if tid > self._temporal and not self._up_to(tid, layer_sync):
                return False
        else:
            slot = src & 0x7F
            out = self._out[slot] if self._src[slot] == src else self._new_picture(src, slot, tid, wide, layer_sync)
            if out < 0:
                return False
            if wide:
                buf[pic_at] = 0x80 | out >> 8
                buf[pic_at + 1] = out & 0xFF
            else:
                buf[pic_at] = out & 0x7F
        if tl0_at >= 0:
            if self._tl0_pending:
                self._sync_tl0(tl0)
            out = buf[tl0_at] = (tl0 + self._tl0_off) & 0xFF
            if ((out - self._last_tl0) & 0xFF) < 0x80:
                self._last_tl0 = out
        return True

    def _up_to(self, tid: int, layer_sync: int) -> bool:
        """Start forwarding temporal layer `tid` if allowed and this picture can begin it."""
        if layer_sync and tid <= self._max_temporal:
            self._temporal = tid
            return True
        return False

    def _new_picture(self, src: int, slot: int, tid: int, wide: int, layer_sync: int) -> int:
        """Output PictureID for a picture not seen before, -1 when it is dropped."""
        mask = 0x7FFF if wide else 0x7F
        if self._pic_pending:
            self._pic_pending = False
            self._pic_off = 0 if self._last_pic < 0 else (self._last_pic + 1 - src) & 0x7FFF
            self._newest = (src - 1) & mask
        newer = 0 < ((src - self._newest) & mask) <= mask >> 1
        if newer:
            self._newest = src
        self._src[slot] = src
        if tid > self._temporal and not self._up_to(tid, layer_sync):
            self._out[slot] = -1
            if newer:  # later pictures move down into its place
                self._pic_off = (self._pic_off - 1) & 0x7FFF
            return -1
        out = self._out[slot] = (src + self._pic_off) & 0x7FFF
        if newer:
            self._last_pic = out
        return out

    def _sync_tl0(self, tl0: int) -> None:
        """Set the TL0PICIDX offset from the first one after a sync."""
        self._tl0_pending = False
        self._tl0_off = 0 if self._last_tl0 < 0 else (self._last_tl0 + 1 - tl0) & 0xFF
        self._last_tl0 = (tl0 + self._tl0_off - 1) & 0xFF


py_read_picture = read_picture
"""The pure-Python twin of read_picture (the compiled one, if built, takes the name)."""

_c = compiled.load("_vp8")
if _c is None:
    Vp8Rewriter = PyVp8Rewriter
else:
    _c.use_picture_type(Vp8Picture)
    Vp8Rewriter, read_picture = _c.Vp8Rewriter, _c.read_picture
