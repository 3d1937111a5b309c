"""A minimal WebRTC client side for benchmarks: one ICE check, a DTLS client handshake, SRTP keys.

It uses kolabmeet's own STUN (aioice), DTLS and SRTP units, so that a
benchmark can load WebRTC transports without the CPU cost of a full WebRTC
stack in the load generator. Not a test peer: tests use pymediasoup.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from aioice import stun

from kolabmeet.media.worker.dtls import DtlsCertificate, DtlsSession, SrtpKeys
from tests.helpers import Browser


class WebRtcClient:
    """Connects one WebRTC transport of the server from one UDP socket."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.sock.setblocking(False)
        self.address: tuple[str, int] = ("127.0.0.1", 0)
        self.transport_id = ""
        self.dtls: DtlsSession | None = None
        self._stun: asyncio.Future[None] | None = None
        self.binding_request = b""
        """The ICE check it made: sent again now and then, it keeps the server's consent (30 s) alive."""

    async def connect(self, producing: bool) -> SrtpKeys:
        """createWebRtcTransport, an ICE check with USE-CANDIDATE, connect as DTLS client; the SRTP keys."""
        info = await self.browser.ok("createWebRtcTransport",
                                     {"forceTcp": False, "producing": producing, "consuming": not producing})
        self.transport_id = info["id"]
        candidate = next(c for c in info["iceCandidates"] if c["protocol"] == "udp")
        self.address = (candidate["ip"], candidate["port"])
        loop = asyncio.get_running_loop()
        loop.add_reader(self.sock.fileno(), self._on_readable)
        try:
            await self._ice_check(info["iceParameters"])
            return await self._handshake(info["dtlsParameters"]["fingerprints"][0])
        finally:
            loop.remove_reader(self.sock.fileno())

    async def _ice_check(self, params: dict[str, Any]) -> None:
        request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
        request.attributes.update({"USERNAME": f"{params['usernameFragment']}:bench", "PRIORITY": 1,
                                   "ICE-CONTROLLING": 1, "USE-CANDIDATE": None})
        request.add_message_integrity(params["password"].encode())
        self._stun = asyncio.get_running_loop().create_future()
        self.binding_request = bytes(request)
        self.sock.sendto(self.binding_request, self.address)
        await asyncio.wait_for(self._stun, 5)

    async def _handshake(self, fingerprint: dict[str, str]) -> SrtpKeys:
        certificate = DtlsCertificate.generate()
        keys: asyncio.Future[SrtpKeys] = asyncio.get_running_loop().create_future()
        self.dtls = DtlsSession(certificate, "client", fingerprint,
                                send=lambda data: self.sock.sendto(data, self.address),
                                on_connected=keys.set_result,
                                on_failed=lambda why: keys.set_exception(RuntimeError(why)),
                                on_closed=lambda: None)
        await self.browser.ok("connectWebRtcTransport", {
            "transportId": self.transport_id,
            "dtlsParameters": {"role": "client", "fingerprints": certificate.fingerprints}})
        self.dtls.start()
        return await asyncio.wait_for(keys, 10)

    def _on_readable(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return
            if data and data[0] < 4 and self._stun is not None and not self._stun.done():
                self._stun.set_result(None)
            elif data and 20 <= data[0] < 64 and self.dtls is not None:
                self.dtls.receive(data)
