"""Pipe transport: RTP and RTCP on one UDP port between two routers (of two workers).

RTP goes in bundles (`bundle.py`), one datagram per event-loop turn; RTCP goes as it is.
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, Any

from kolabmeet.media.worker import bundle
from kolabmeet.media.worker.consumer import Consumer
from kolabmeet.media.worker.pipe_consumer import PipeConsumer
from kolabmeet.media.worker.plain_transport import PlainTransport
from kolabmeet.media.worker.producer import Producer
from kolabmeet.media.worker.send import Sender
from kolabmeet.media.worker.transport import DRAIN_BURST, RECV_BUFFER, Notify

if TYPE_CHECKING:
    from kolabmeet.media.worker.router import Router

_PIPE_RECV = bytearray(65536)
"""Where a pipe's datagrams are read; each bundled packet is copied from there into RECV_BUFFER."""
_PIPE_VIEW = memoryview(_PIPE_RECV)


class PipeTransport(PlainTransport):
    """A plain transport with rtcp-mux whose consumers forward every encoding as it is."""

    kind_name = "pipe-transport"

    def __init__(self, transport_id: str, router: "Router", notify: Notify, data: dict[str, Any]) -> None:
        super().__init__(transport_id, router, notify, {**data, "comedia": False, "rtcpMux": True})
        self._bundle = bundle.BundleWriter()
        self._loop = asyncio.get_running_loop()  # asked once: on Python 3.11 each ask is a getpid system call

    def connect(self, data: dict[str, Any]) -> None:
        """The other end's ip and port; RTCP shares the port."""
        super().connect({**data, "rtcpPort": data.get("port")})

    def _use(self, sender: Sender) -> None:
        """Our own send_rtp, which bundles, stays in front of the sender."""
        self._adopt(sender)

    def send_rtp(self, view: memoryview, ext_map: bytes | None = None, priority: int = 1,
                 paced: bool = True, now: float = 0.0, twcc_seq: int = -1) -> bool:
        """Hot path: add the packet to this turn's bundle; a bundle's first packet schedules its
        :meth:`_flush` at the loop's next turn."""
        if self._sender is None or self.closed:
            return False
        writer = self._bundle
        size = len(view)
        if not writer.fits(size):
            self._flush()
            if not writer.fits(size):
                return False
        if writer.empty:
            self._loop.call_soon(self._flush)
        writer.add(view)
        return True

    def _flush(self) -> None:
        if self._sender is not None and not self._bundle.empty and not self.closed:
            self._sender.send_rtp(self._bundle.take())

    def _on_readable(self, sock: socket.socket, rtcp_port: bool) -> None:
        """Read up to DRAIN_BURST datagrams; each packet of a bundle is handled as if it had come alone."""
        buf, view = _PIPE_RECV, _PIPE_VIEW
        for _ in range(DRAIN_BURST):
            if self.closed:
                return
            try:
                length = sock.recv_into(buf)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            if not bundle.is_bundle(buf, length):
                if length >= 8 and (buf[0] & 0xC0) == 0x80:
                    self.receive_rtcp(buf, length)
                continue
            for offset, size in bundle.split(buf, length):
                if size >= 12 and (buf[offset] & 0xC0) == 0x80 and not self.closed:
                    RECV_BUFFER[:size] = view[offset:offset + size]
                    self.receive_rtp(RECV_BUFFER, size)

    def _choose_feedback(self, producer: Producer) -> None:
        """No congestion feedback on a pipe: both ends are workers of one deployment, and the
        transport-wide numbers in piped packets are whatever the near consumers wrote last into
        the buffer they share, meaningless here. Feedback on them cost the far worker their
        accounting per packet and a feedback packet about every 100 ms, the near one their parsing."""

    def make_consumer(self, producer: Producer, data: dict[str, Any]) -> Consumer:
        return PipeConsumer(data["consumerId"], self, producer, data, self.notify)
