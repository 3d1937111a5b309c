"""A pipe consumer: the producer's packets to another router, every encoding as it is."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any, Callable

from kolabmeet.media.worker.consumer import Consumer
from kolabmeet.media.worker.vp8 import restore_picture

if TYPE_CHECKING:
    from kolabmeet.media.worker.producer import Producer
    from kolabmeet.media.worker.transport import Transport

_SEQ_TS_SSRC = struct.Struct("!HII")


class PipeConsumer(Consumer):
    """Keeps sequence numbers and timestamps; only the SSRC becomes the encoding's mapped one.

    The producer on the other side sees the same streams the original producer
    sees, so its loss tracking and key frame requests work unchanged. It is never
    paused: the control process pauses the producer on the other side instead.
    """

    def __init__(self, consumer_id: str, transport: "Transport", producer: "Producer",
                 data: dict[str, Any], notify: Callable[[str, str, Any], None]) -> None:
        super().__init__(consumer_id, transport, producer, data, notify)
        self.written_extensions = frozenset()  # the producer on the other side gives its packets room
        self.layer_ssrcs = [encoding["ssrc"] for encoding in self.rtp_parameters["encodings"]]

    def send_rtp(self, buf: bytearray, view: memoryview, length: int, marked_pt: int,
                 seq: int, ts: int, keyframe: bool, layer: int) -> None:
        """Hot path: the router's payload type and the layer's SSRC; the producer's own sequence number,
        timestamp and VP8 picture values written back (consumers before this one rewrote them in the
        shared buffer)."""
        if not self.active or layer >= len(self.layer_ssrcs):
            return
        buf[1] = marked_pt
        _SEQ_TS_SSRC.pack_into(buf, 2, seq, ts, self.layer_ssrcs[layer])
        restore_picture(buf, self.producer.vp8_picture)
        if self.transport.send_rtp(view):
            self.packets += 1
            self.bytes += length

    def _update_active(self) -> None:
        self.active = not self.closed and self.transport.can_send()

    @property
    def allocatable(self) -> bool:
        """Every layer goes through: nothing to allocate."""
        return False

    def sender_report(self, ntp: int) -> bytes | None:
        """The original sender's reports are not relayed; the other side does without."""
        return None
