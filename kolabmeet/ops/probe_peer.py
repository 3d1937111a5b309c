"""A WebRTC peer made of kolabmeet's own parts, for `kolabmeet doctor`'s call through a running server.

It speaks the Kolab client's protocol (HTTP API for a room and tokens, socket.io
signaling) and does what a browser does on the wire, with one candidate: ICE as
the controlling agent (aioice's STUN codec), DTLS as the client (the worker's
DtlsSession), SRTP (the worker's SrtpSession). Over a plain UDP socket, or
through a TURN relay (aioice's TURN client) to test the TURN server as clients
use it. One peer sends Opus-framed packets, another receives them forwarded.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import struct
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import aioice.turn
import socketio
from aioice import stun

from kolabmeet.media.worker.dtls import DtlsCertificate, DtlsSession, SrtpKeys
from kolabmeet.media.worker.rtp import payload_bounds
from kolabmeet.media.worker.srtp import PacketBuffer, SrtpSession

API = "/meetmedia/api"
OPUS_PT = 100
MARK = b"kolabmeet doctor "
TIMEOUT = 5.0


class ProbeError(Exception):
    """A step of the probe call failed; the message says which and why."""


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, peer: "ProbePeer") -> None:
        self.peer = peer

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.peer.received(data)


class ProbePeer:
    """One participant: joins a room, makes one transport, and sends or receives audio packets on it."""

    def __init__(self, base: str, token_url: str, turn: dict[str, Any] | None = None) -> None:
        query = parse_qs(urlsplit(token_url).query)
        self.url = f"{base}?{urlsplit(token_url).query}"
        self.peer_id = query["peerId"][0]
        self.turn = turn
        """{"host", "port", "transport", "username", "credential"}: reach the server through that relay."""
        self.sio = socketio.AsyncClient(reconnection=False)
        self.sio.on("request", self._on_request)
        self.sio.on("notification", self._on_notification)
        self.ready = asyncio.Event()
        self.consumer: dict[str, Any] | None = None
        self.payloads: list[bytes] = []
        self._certificate = DtlsCertificate.generate()
        self._ufrag = secrets.token_hex(4)
        self.transport_id = ""
        self._endpoint: Any = None
        self._remote: tuple[str, int] | None = None
        self._binding: asyncio.Future[stun.Message] | None = None
        self._connected: asyncio.Future[SrtpKeys] | None = None
        self._dtls: DtlsSession | None = None
        self._srtp_in: SrtpSession | None = None
        self._srtp_out: SrtpSession | None = None
        self._buffer = PacketBuffer()
        self._consumed = asyncio.Event()

    async def join(self) -> dict[str, Any]:
        """Connect the socket, wait for roomReady, join with the router's capabilities."""
        try:
            await self.sio.connect(self.url, socketio_path="/meetmedia/signaling", transports=["websocket"],
                                   wait_timeout=TIMEOUT)
            await asyncio.wait_for(self.ready.wait(), TIMEOUT)
        except (socketio.exceptions.ConnectionError, asyncio.TimeoutError) as exc:
            raise ProbeError(f"signaling: no roomReady from {self.url.split('?')[0]} ({exc or 'timeout'})") from None
        caps = await self.request("getRouterRtpCapabilities")
        await self.request("join", {"nickname": "kolabmeet doctor", "rtpCapabilities": caps})
        return caps

    async def request(self, method: str, data: Any = None) -> Any:
        payload: dict[str, Any] = {"method": method, **({"data": data} if data is not None else {})}
        try:
            ack = await self.sio.call("request", payload, timeout=TIMEOUT)
        except socketio.exceptions.TimeoutError:
            raise ProbeError(f"signaling: {method} got no answer in {TIMEOUT:.0f} s") from None
        if isinstance(ack, (list, tuple)):
            if ack and ack[0] is not None:
                raise ProbeError(f"signaling: {method} failed: {ack[1] if len(ack) > 1 else ack[0]}")
            return ack[1] if len(ack) > 1 else None
        return ack

    async def _on_notification(self, message: dict[str, Any]) -> None:
        if isinstance(message, dict) and message.get("method") == "roomReady":
            self.ready.set()

    async def _on_request(self, message: dict[str, Any]) -> None:
        if isinstance(message, dict) and message.get("method") == "newConsumer":
            self.consumer = message.get("data")
            self._consumed.set()

    async def open_transport(self, producing: bool) -> None:
        """createWebRtcTransport, then ICE (directly or through TURN), connectWebRtcTransport and DTLS."""
        info = await self.request("createWebRtcTransport", {"producing": producing, "consuming": not producing,
                                                             "forceTcp": False})
        self.transport_id = info["id"]
        candidate = next((c for c in info["iceCandidates"] if c["protocol"] == "udp"), None)
        if candidate is None:
            raise ProbeError("the server announced no UDP candidate")
        self._remote = (candidate.get("address") or candidate["ip"], candidate["port"])
        await self._open_endpoint()
        await self._ice(info["iceParameters"])
        fingerprint = info["dtlsParameters"]["fingerprints"][-1]
        await self.request("connectWebRtcTransport", {"transportId": self.transport_id, "dtlsParameters": {
            "role": "client", "fingerprints": self._certificate.fingerprints}})
        await self._handshake(fingerprint)

    async def _open_endpoint(self) -> None:
        loop = asyncio.get_running_loop()
        turn = self.turn
        if turn is None:
            self._endpoint, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(self),
                                                                    remote_addr=self._remote)
            return
        try:
            self._endpoint, _ = await asyncio.wait_for(aioice.turn.create_turn_endpoint(
                lambda: _Datagrams(self), (turn["host"], turn["port"]), turn["username"], turn["credential"],
                transport=turn["transport"]), TIMEOUT)
        except asyncio.TimeoutError:
            raise ProbeError(f"TURN {turn['host']}:{turn['port']} over {turn['transport']}: no answer") from None
        except (OSError, ConnectionError, stun.TransactionFailed) as exc:
            raise ProbeError(f"TURN {turn['host']}:{turn['port']} over {turn['transport']}: {exc}") from None

    def _send(self, data: bytes) -> None:
        if self.turn is None:
            self._endpoint.sendto(data)
        else:
            self._endpoint.sendto(data, self._remote)

    async def _ice(self, parameters: dict[str, str]) -> None:
        request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
        request.attributes.update({"USERNAME": f"{parameters['usernameFragment']}:{self._ufrag}",
                                   "PRIORITY": 1853817087, "ICE-CONTROLLING": secrets.randbits(64),
                                   "USE-CANDIDATE": None})
        request.add_message_integrity(parameters["password"].encode())
        request.add_fingerprint()
        for _ in range(10):
            self._binding = asyncio.get_running_loop().create_future()
            self._send(bytes(request))
            try:
                await asyncio.wait_for(asyncio.shield(self._binding), 0.5)
                return
            except asyncio.TimeoutError:
                continue
        raise ProbeError(f"ICE: no answer to binding requests from {self._remote[0]}:{self._remote[1]} "
                         f"(the announced address and port: reachable from here?)")

    async def _handshake(self, fingerprint: dict[str, str]) -> None:
        loop = asyncio.get_running_loop()
        self._connected = loop.create_future()
        connected = self._connected

        def failed(reason: str) -> None:
            if not connected.done():
                connected.set_exception(ProbeError(f"DTLS failed: {reason}"))

        self._dtls = DtlsSession(self._certificate, "client", fingerprint, self._send,
                                 on_connected=lambda keys: connected.done() or connected.set_result(keys),
                                 on_failed=failed, on_closed=lambda: failed("closed"))
        self._dtls.start()
        try:
            keys = await asyncio.wait_for(connected, TIMEOUT)
        except asyncio.TimeoutError:
            raise ProbeError("DTLS: no handshake in 5 s") from None
        self._srtp_out = SrtpSession(keys.profile, keys.local_key, keys.local_salt, outbound=True)
        self._srtp_in = SrtpSession(keys.profile, keys.remote_key, keys.remote_salt, outbound=False)

    def received(self, data: bytes) -> None:
        if not data:
            return
        first = data[0]
        if first < 2 and self._binding is not None and not self._binding.done():
            try:
                message = stun.parse_message(data)
            except ValueError:
                return
            if message.message_class == stun.Class.RESPONSE:
                self._binding.set_result(message)
        elif 20 <= first <= 63 and self._dtls is not None:
            self._dtls.receive(data)
        elif 128 <= first <= 191 and self._srtp_in is not None and not 192 <= data[1] <= 223:
            self._buffer.data[:len(data)] = data
            length = self._srtp_in.unprotect_rtp(self._buffer, len(data))
            start, end = payload_bounds(self._buffer.data, length) if length > 0 else (-1, -1)
            if start > 0:
                self.payloads.append(bytes(self._buffer.data[start:end]))

    async def produce_audio(self, ssrc: int) -> str:
        answer = await self.request("produce", {"transportId": self.transport_id, "kind": "audio", "appData": {
            "source": "mic"}, "rtpParameters": {
                "mid": "0", "codecs": [{"mimeType": "audio/opus", "payloadType": OPUS_PT, "clockRate": 48000,
                                        "channels": 2, "parameters": {}, "rtcpFeedback": []}],
                "headerExtensions": [], "encodings": [{"ssrc": ssrc}], "rtcp": {"cname": "kolabmeet-doctor"}}})
        return answer["id"]

    def send_audio(self, ssrc: int, seq: int) -> None:
        """One RTP packet whose payload says what it is and its number."""
        payload = MARK + str(seq).encode() + os.urandom(8)
        packet = struct.pack("!BBHII", 0x80, OPUS_PT, seq & 0xFFFF, seq * 960 & 0xFFFFFFFF, ssrc) + payload
        self._buffer.data[:len(packet)] = packet
        length = self._srtp_out.protect_rtp(self._buffer, len(packet))
        if length > 0:
            self._send(bytes(self._buffer.data[:length]))

    async def wait_consumer(self) -> dict[str, Any]:
        try:
            await asyncio.wait_for(self._consumed.wait(), TIMEOUT)
        except asyncio.TimeoutError:
            raise ProbeError("signaling: no newConsumer for the probe's microphone") from None
        return self.consumer or {}

    async def close(self) -> None:
        if self._dtls is not None:
            self._dtls.close()
        if self._endpoint is not None:
            self._endpoint.close()
        for session in (self._srtp_in, self._srtp_out):
            if session is not None:
                session.close()
        if self.sio.connected:
            await self.sio.disconnect()


async def call_through(base: str, token: str, turn: dict[str, Any] | None = None) -> str:
    """A room with a sender and a receiver (the room closes by itself once they left): what arrived, or a
    ProbeError that says what failed. `base` is the server's listener (HTTP API and signaling)."""
    async with aiohttp.ClientSession(headers={"X-Auth-Token": token}) as http:
        async with http.post(base + API + "/sessions", json=[]) as response:
            if response.status != 200:
                raise ProbeError(f"HTTP API: POST /sessions answered {response.status}")
            room = (await response.json())["id"]
        tokens = []
        for _ in range(2):
            async with http.post(f"{base}{API}/sessions/{room}/connection", json={"role": 3}) as response:
                tokens.append((await response.json())["token"])
        peers = [ProbePeer(base, t, turn) for t in tokens]
        try:
            sender, receiver = peers
            await sender.join()
            await receiver.join()
            await receiver.open_transport(producing=False)
            await sender.open_transport(producing=True)
            ssrc = secrets.randbits(31) + 1
            await sender.produce_audio(ssrc)
            await receiver.wait_consumer()
            for seq in range(1, 26):
                sender.send_audio(ssrc, seq)
                await asyncio.sleep(0.02)
                if any(p.startswith(MARK) for p in receiver.payloads):
                    break
            await asyncio.sleep(0.1)
            got = [p for p in receiver.payloads if p.startswith(MARK)]
            if not got:
                raise ProbeError("media: the receiver got no forwarded packet (ICE and DTLS were up)")
            return f"{len(got)} packet(s) forwarded and decrypted"
        finally:
            for peer in peers:
                await peer.close()
