"""A constrained network link between browsers and the server, made in the test process.

The server listens on 127.0.0.1 and announces 127.0.0.2 (the same loopback); this
relay owns the announced UDP port on 127.0.0.2 and forwards each browser's
datagrams to the server from a socket of its own, and the answers back. Each
browser has a link of its own, each direction of it a `Shaper`: a rate (a
bottleneck with a queue of at most MAX_QUEUE seconds, tail drop beyond, as a
router does), a delay and a loss share; `uplink` and `downlink` hold the settings
every browser's link follows.
(The kernel here has no tc qdiscs, so tbf and netem cannot be used.)
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any, AsyncIterator, Callable

from tests.media.relay import PeerSide, ServerUdp

ANNOUNCED = "127.0.0.2"
MAX_QUEUE = 0.25


class Conditions:
    """What a direction of the link does: rate (bit/s, None for no limit), delay (s), loss (0..1)."""

    def __init__(self) -> None:
        self.rate: float | None = None
        self.delay = 0.0
        self.loss = 0.0
        self.dropped = 0

    def set(self, rate: float | None = None, delay: float = 0.0, loss: float = 0.0) -> None:
        self.rate, self.delay, self.loss = rate, delay, loss


class Shaper:
    """One direction of one browser's link, under shared `Conditions`."""

    def __init__(self, conditions: Conditions, send: Callable[[bytes, Any], None]) -> None:
        self.conditions = conditions
        self.send = send
        self._busy_until = 0.0
        self._random = random.Random(5)

    def push(self, data: bytes, addr: Any) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        conditions = self.conditions
        if conditions.loss and self._random.random() < conditions.loss:
            conditions.dropped += 1
            return
        leave = now
        if conditions.rate:
            start = max(now, self._busy_until)
            if start - now > MAX_QUEUE:
                conditions.dropped += 1
                return
            leave = self._busy_until = start + len(data) * 8 / conditions.rate
        leave += conditions.delay
        if leave <= now:
            self.send(data, addr)
        else:
            loop.call_at(leave, self.send, data, addr)


class ShapedLink:
    """Browsers <-> 127.0.0.2:port <-> 127.0.0.1:port (the server)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.uplink = Conditions()
        self.downlink = Conditions()
        self.shapers: dict[Any, tuple[Shaper, Shaper]] = {}
        self._listener: asyncio.DatagramTransport | None = None
        self._upstreams: dict[Any, asyncio.DatagramTransport] = {}

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self._listener, _ = await loop.create_datagram_endpoint(lambda: PeerSide(self),
                                                                local_addr=(ANNOUNCED, self.port))

    def from_peer(self, data: bytes, browser: Any) -> None:
        if browser not in self._upstreams:
            asyncio.get_running_loop().create_task(self._connect(browser, data))
            return
        self.shapers[browser][0].push(data, browser)

    async def _connect(self, browser: Any, first: bytes) -> None:
        loop = asyncio.get_running_loop()
        if browser not in self.shapers:
            self.shapers[browser] = (Shaper(self.uplink, self._to_server), Shaper(self.downlink, self._to_browser))
            transport, _ = await loop.create_datagram_endpoint(lambda: ServerUdp(self, browser),
                                                               remote_addr=("127.0.0.1", self.port))
            self._upstreams[browser] = transport
        self.shapers[browser][0].push(first, browser)

    def to_peer(self, data: bytes, browser: Any) -> None:
        self.shapers[browser][1].push(data, browser)

    def _to_server(self, data: bytes, browser: Any) -> None:
        upstream = self._upstreams.get(browser)
        if upstream is not None and not upstream.is_closing():
            upstream.sendto(data)

    def _to_browser(self, data: bytes, browser: Any) -> None:
        if self._listener is not None and not self._listener.is_closing():
            self._listener.sendto(data, browser)

    def close(self) -> None:
        for transport in [self._listener, *self._upstreams.values()]:
            if transport is not None:
                transport.close()


@contextlib.asynccontextmanager
async def shaped_link(port: int) -> AsyncIterator[ShapedLink]:
    link = ShapedLink(port)
    await link.open()
    try:
        yield link
    finally:
        link.close()
