"""A relay on 127.0.0.1 between a WebRTC test peer and the server.

It forwards datagrams from the peer to the server's candidate and back, and can
drop a share of them in either direction (a lossy network, evenly spread) and
hold the peer's uplink to a rate (a bottleneck with a queue of at most MAX_QUEUE
seconds, tail drop beyond). With `tcp=True` it
speaks ICE-TCP's RFC 4571 framing to the server: aioice (aiortc's ICE) has no
TCP candidates, so this is how an aiortc peer reaches the server's TCP port.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from aioice import stun

_FRAME = struct.Struct("!H")
MAX_QUEUE = 0.25


class PeerSide(asyncio.DatagramProtocol):
    """Datagrams from the peer side, to `relay.from_peer(data, addr)`."""

    def __init__(self, relay: Any) -> None:
        self.relay = relay

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.relay.from_peer(data, addr)


class ServerUdp(asyncio.DatagramProtocol):
    """Datagrams from the server for one peer, to `relay.to_peer(data, peer)`."""

    def __init__(self, relay: Any, peer: Any) -> None:
        self.relay, self.peer = relay, peer

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.relay.to_peer(data, self.peer)


class _ServerTcp(asyncio.Protocol):
    def __init__(self, relay: "Relay", peer: Any) -> None:
        self.relay, self.peer = relay, peer
        self.pending = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.pending += data
        while len(self.pending) >= 2:
            (size,) = _FRAME.unpack_from(self.pending)
            if len(self.pending) < 2 + size:
                return
            frame = bytes(self.pending[2:2 + size])
            del self.pending[:2 + size]
            self.relay.to_peer(frame, self.peer)

    def send(self, data: bytes) -> None:
        self.transport.write(_FRAME.pack(len(data)) + data)


class Relay:
    """One listening UDP port for the peer; one upstream (UDP socket or TCP connection) per peer address."""

    def __init__(self, server: tuple[str, int], tcp: bool = False, drop_to_server: float = 0.0,
                 drop_to_peer: float = 0.0, rate_to_server: float | None = None) -> None:
        self.server = server
        self.tcp = tcp
        self.rate_to_server = rate_to_server
        self._busy_until = 0.0
        self.drop_to_server = drop_to_server
        self.drop_to_peer = drop_to_peer
        self.dropped = 0
        self.forwarded = 0
        self._seen = 0
        self._listen: asyncio.DatagramTransport | None = None
        self._upstream: dict[Any, Any] = {}
        self._connecting: dict[Any, list[bytes]] = {}
        self._stun_waiters: dict[bytes, asyncio.Future[stun.Message]] = {}

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self._listen, _ = await loop.create_datagram_endpoint(lambda: PeerSide(self), local_addr=("127.0.0.1", 0))
        return self._listen.get_extra_info("sockname")[1]

    def _drop(self, share: float, data: bytes) -> bool:
        """Every (1/share)-th media (SRTP/SRTCP) packet is dropped; ICE and DTLS always get through.

        Evenly spread, so that a run is repeatable: random loss sometimes drops a
        retransmission and the next gap (aiortc re-NACKs only on a new gap) many
        packets later, which would make the test depend on luck.
        """
        if not share or not data or data[0] < 128:
            return False
        self._seen += 1
        if self._seen % round(1 / share):
            return False
        self.dropped += 1
        return True

    def from_peer(self, data: bytes, peer: Any) -> None:
        if self._drop(self.drop_to_server, data):
            return
        if self.rate_to_server:
            loop = asyncio.get_running_loop()
            start = max(loop.time(), self._busy_until)
            if start - loop.time() > MAX_QUEUE:
                self.dropped += 1
                return
            self._busy_until = start + len(data) * 8 / self.rate_to_server
            loop.call_at(self._busy_until, self._to_server, data, peer)
            return
        self._to_server(data, peer)

    def _to_server(self, data: bytes, peer: Any) -> None:
        self.forwarded += 1
        upstream = self._upstream.get(peer)
        if upstream is not None:
            upstream.send(data) if self.tcp else upstream.sendto(data)
            return
        if peer in self._connecting:
            self._connecting[peer].append(data)
            return
        self._connecting[peer] = [data]
        asyncio.get_running_loop().create_task(self._open(peer))

    async def _open(self, peer: Any) -> None:
        loop = asyncio.get_running_loop()
        if self.tcp:
            _, upstream = await loop.create_connection(lambda: _ServerTcp(self, peer), *self.server)
        else:
            upstream, _ = await loop.create_datagram_endpoint(lambda: ServerUdp(self, peer),
                                                              remote_addr=self.server)
        self._upstream[peer] = upstream
        for data in self._connecting.pop(peer):
            upstream.send(data) if self.tcp else upstream.sendto(data)

    async def stun_check(self, username: str, password: str, timeout: float = 1.0) -> stun.Message | None:
        """A binding request sent from the peer's upstream tuple, as an ICE restart's checks would be;
        the server's answer (not passed on to the peer), or None."""
        (peer, upstream), = self._upstream.items()
        request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
        request.attributes.update({"USERNAME": username, "PRIORITY": 1, "ICE-CONTROLLING": 1, "USE-CANDIDATE": None})
        request.add_message_integrity(password.encode())
        waiter = asyncio.get_running_loop().create_future()
        self._stun_waiters[request.transaction_id] = waiter
        data = bytes(request)
        upstream.send(data) if self.tcp else upstream.sendto(data)
        try:
            return await asyncio.wait_for(waiter, timeout)
        except asyncio.TimeoutError:
            return None
        finally:
            self._stun_waiters.pop(request.transaction_id, None)

    def to_peer(self, data: bytes, peer: Any) -> None:
        if data and data[0] < 4 and len(data) >= 20 and data[8:20] in self._stun_waiters:
            self._stun_waiters[data[8:20]].set_result(stun.parse_message(data))
            return
        if self._drop(self.drop_to_peer, data):
            return
        self.forwarded += 1
        self._listen.sendto(data, peer)

    def close(self) -> None:
        for upstream in self._upstream.values():
            upstream.transport.close() if self.tcp else upstream.close()
        if self._listen is not None:
            self._listen.close()
