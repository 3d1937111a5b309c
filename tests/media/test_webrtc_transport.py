"""WebRTC transports at their edges: candidates, STUN checks, bad fingerprints, junk, closing, consent."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import struct
from typing import Any

import aiohttp
import pytest
from aioice import stun

from kolabmeet.media.worker import ice, webrtc_server
from tests.helpers import Browser, KolabApp, joined
from tests.media.webrtc_peer import WebRtcPeer, loopback_only

loopback_only()


def binding_request(ufrag: str, password: str, use_candidate: bool = True) -> stun.Message:
    request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
    request.attributes.update({"USERNAME": f"{ufrag}:remote", "PRIORITY": 1, "ICE-CONTROLLING": 1})
    if use_candidate:
        request.attributes["USE-CANDIDATE"] = None
    request.add_message_integrity(password.encode())
    return request


class UdpClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.put_nowait(data)

    async def answer(self, timeout: float = 0.5) -> bytes | None:
        try:
            return await asyncio.wait_for(self.received.get(), timeout)
        except asyncio.TimeoutError:
            return None


async def udp_client(port: int) -> tuple[asyncio.DatagramTransport, UdpClient]:
    loop = asyncio.get_running_loop()
    return await loop.create_datagram_endpoint(UdpClient, remote_addr=("127.0.0.1", port))


async def new_transport(browser: Browser, force_tcp: bool = False) -> dict[str, Any]:
    return await browser.ok("createWebRtcTransport", {"forceTcp": force_tcp, "producing": False, "consuming": True})


async def test_candidates_parameters_and_force_tcp(app: KolabApp, browsers: list[Browser]) -> None:
    room = await app.create_room()
    browser = await joined(app, room)
    browsers.append(browser)
    info = await new_transport(browser)
    assert [c["protocol"] for c in info["iceCandidates"]] == ["udp", "tcp"]
    udp, tcp = info["iceCandidates"]
    assert udp["priority"] > tcp["priority"] and tcp["tcpType"] == "passive"
    assert udp["ip"] == udp["address"] == "127.0.0.1" and udp["type"] == "host"
    assert udp["port"] == tcp["port"]
    params = info["iceParameters"]
    assert params["iceLite"] is True and len(params["usernameFragment"]) >= 16 and len(params["password"]) >= 32
    assert info["dtlsParameters"]["role"] == "auto"
    (fingerprint,) = info["dtlsParameters"]["fingerprints"]
    assert fingerprint["algorithm"] == "sha-256" and len(fingerprint["value"].split(":")) == 32
    forced = await new_transport(browser, force_tcp=True)
    assert [c["protocol"] for c in forced["iceCandidates"]] == ["tcp"]
    assert await browser.fails("connectWebRtcTransport", {"transportId": info["id"], "dtlsParameters": "x"})
    assert await browser.fails("restartIce", {"transportId": "nope"})


async def test_announced_address_is_in_candidates(server_with: Any) -> None:
    async with server_with(webrtc_announced_address="192.0.2.10") as server, aiohttp.ClientSession() as http:
        app = KolabApp(server, http)
        browser = await joined(app, await app.create_room())
        info = await new_transport(browser)
        assert {c["ip"] for c in info["iceCandidates"]} == {"192.0.2.10"}
        await browser.close()


async def test_stun_checks_answered_only_with_the_right_password(app: KolabApp, browsers: list[Browser]) -> None:
    room = await app.create_room()
    browser = await joined(app, room)
    browsers.append(browser)
    info = await new_transport(browser)
    params = info["iceParameters"]
    transport, client = await udp_client(info["iceCandidates"][0]["port"])
    try:
        transport.sendto(bytes(binding_request(params["usernameFragment"], "wrong-password-0123456789abcdef")))
        assert await client.answer() is None
        transport.sendto(bytes(binding_request("unknownufrag", params["password"])))
        assert await client.answer() is None
        request = binding_request(params["usernameFragment"], params["password"])
        transport.sendto(bytes(request))
        response = stun.parse_message(await client.answer())
        assert response.message_class == stun.Class.RESPONSE
        assert response.transaction_id == request.transaction_id
        assert response.check_message_integrity(params["password"].encode())
        assert response.attributes["XOR-MAPPED-ADDRESS"] == transport.get_extra_info("sockname")[:2]
        server_transport = app.server.rooms.get(room).peers[browser.peer_id].transports[info["id"]]
        for _ in range(50):
            if server_transport.ice_state == "completed":
                break
            await asyncio.sleep(0.02)
        assert server_transport.ice_state == "completed", "checks before connectWebRtcTransport are answered"
    finally:
        transport.close()


async def test_junk_on_the_shared_port_is_ignored(app: KolabApp, browsers: list[Browser]) -> None:
    room = await app.create_room()
    browser = await joined(app, room)
    browsers.append(browser)
    info = await new_transport(browser)
    port = info["iceCandidates"][0]["port"]
    transport, client = await udp_client(port)
    junk = [b"", b"\x00", b"\x00\x01\x00\x08" + os.urandom(16), bytes([22]) * 40, bytes([0x80]) * 1500, os.urandom(1200)]
    for data in junk + [os.urandom(n) for n in range(1, 300, 7)]:
        transport.sendto(data)
    transport.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(struct.pack("!H", 60000) + os.urandom(5000))
    writer.write(os.urandom(3000))
    await writer.drain()
    writer.close()
    with socket.create_connection(("127.0.0.1", port)) as raw:
        raw.sendall(struct.pack("!H", 20) + bytes(20))
    await asyncio.sleep(0.2)
    again = await new_transport(browser)
    assert again["iceCandidates"][0]["port"] == port
    dump = await app.server.rooms.get(room).router.worker.dump()
    assert dump["pid"] == app.server.rooms.get(room).router.worker.pid


async def test_wrong_fingerprint_is_refused_and_closes_the_transport(app: KolabApp) -> None:
    room = await app.create_room()
    browser = Browser((await app.connection(room, 3))["token"])
    await browser.connect()
    peer = WebRtcPeer(browser)
    await peer.load()
    await peer.join("mallory")
    info = await peer.create_recv_transport()
    transport = peer.recv_transport
    transport.remove_all_listeners("connect")

    @transport.on("connect")
    async def tampered(dtls_parameters: Any) -> None:
        params = dtls_parameters.model_dump(exclude_none=True)
        params["fingerprints"] = [{"algorithm": "sha-256", "value": ":".join(["AB"] * 32)}]
        await browser.ok("connectWebRtcTransport", {"transportId": transport.id, "dtlsParameters": params})

    server_peer = app.server.rooms.get(room).peers[browser.peer_id]
    server_transport = server_peer.transports[info["id"]]
    states: list[str] = []
    server_transport.on("dtlsstatechange", lambda state, reason=None: states.append(state))
    publisher = await joined(app, room, role=3)
    try:
        await publisher.ok("createPlainTransport", {"producing": True, "consuming": False})
        plain = next(iter(app.server.rooms.get(room).peers[publisher.peer_id].transports.values()))
        await plain.produce("audio", {"codecs": [{"mimeType": "audio/opus", "payloadType": 100, "clockRate": 48000,
                                                   "channels": 2}], "encodings": [{"ssrc": 1234}]},
                            app_data={"source": "mic"})
        producer_id = next(iter(plain.producers))
        await peer.recv_transport.consume(id="c1", producerId=producer_id, kind="audio",
                                          rtpParameters=_consumer_parameters())
        for _ in range(100):
            if server_transport.closed:
                break
            await asyncio.sleep(0.05)
        assert "failed" in states
        assert server_transport.closed and info["id"] not in server_peer.transports
    finally:
        await publisher.close()
        await peer.close()


def _consumer_parameters() -> Any:
    from pymediasoup.rtp_parameters import RtpParameters

    return RtpParameters(**{
        "mid": "0",
        "codecs": [{"mimeType": "audio/opus", "payloadType": 100, "clockRate": 48000, "channels": 2,
                    "parameters": {}, "rtcpFeedback": []}],
        "encodings": [{"ssrc": 4321}], "headerExtensions": [], "rtcp": {"cname": "x", "reducedSize": True},
    })


async def test_a_selected_udp_tuple_is_answered_from_a_socket_of_its_own_on_the_same_port(
        app: KolabApp, browsers: list[Browser]) -> None:
    """The clients' sockets are connected to the server's port: they take answers only from there."""
    room = await app.create_room()
    browser = await joined(app, room)
    browsers.append(browser)
    worker = app.server.rooms.get(room).router.worker
    info = await new_transport(browser)
    params = info["iceParameters"]
    port = info["iceCandidates"][0]["port"]
    clients = [await udp_client(port), await udp_client(port)]
    try:
        first, second = clients
        first[0].sendto(bytes(binding_request(params["usernameFragment"], params["password"])))
        assert await first[1].answer() is not None, "the first answer leaves by the shared socket"
        dump = (await worker.request("worker.dump"))["webrtcServer"]
        assert dump["tuplesWithOwnSocket"] == 1, dump
        for _ in range(3):
            first[0].sendto(bytes(binding_request(params["usernameFragment"], params["password"])))
            assert await first[1].answer() is not None, "answered through the tuple's own socket"
        second[0].sendto(bytes(binding_request(params["usernameFragment"], params["password"], use_candidate=False)))
        assert await second[1].answer() is not None, "another address is still heard on the shared socket"
        dump = (await worker.request("worker.dump"))["webrtcServer"]
        assert (dump["tuples"], dump["tuplesWithOwnSocket"]) == (2, 1), dump
    finally:
        for transport, _client in clients:
            transport.close()


async def test_closed_transport_frees_its_state(app: KolabApp, browsers: list[Browser]) -> None:
    room = await app.create_room()
    browser = await joined(app, room)
    browsers.append(browser)
    worker = app.server.rooms.get(room).router.worker
    before = (await worker.request("worker.dump"))
    info = await new_transport(browser)
    params = info["iceParameters"]
    transport, client = await udp_client(info["iceCandidates"][0]["port"])
    transport.sendto(bytes(binding_request(params["usernameFragment"], params["password"])))
    assert await client.answer() is not None
    await browser.close()
    await asyncio.sleep(0.3)
    after = await worker.request("worker.dump")
    assert after["webrtcServer"]["transports"] == before["webrtcServer"]["transports"]
    assert after["webrtcServer"]["tuples"] == before["webrtcServer"]["tuples"]
    assert after["webrtcServer"]["tuplesWithOwnSocket"] == before["webrtcServer"]["tuplesWithOwnSocket"]
    transport.sendto(bytes(binding_request(params["usernameFragment"], params["password"])))
    assert await client.answer() is None
    transport.close()


async def test_consent_lost_makes_the_transport_disconnected(server_with: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ice, "CONSENT_TIMEOUT", 0.5)
    async with server_with(in_process_workers=True) as server, aiohttp.ClientSession() as http:
        app = KolabApp(server, http)
        room = await app.create_room()
        browser = await joined(app, room)
        info = await new_transport(browser)
        server_transport = server.rooms.get(room).peers[browser.peer_id].transports[info["id"]]
        states: list[str] = []
        server_transport.on("icestatechange", states.append)
        params = info["iceParameters"]
        transport, client = await udp_client(info["iceCandidates"][0]["port"])
        transport.sendto(bytes(binding_request(params["usernameFragment"], params["password"])))
        assert await client.answer() is not None
        await asyncio.sleep(1.5)
        assert states[:2] == ["completed", "disconnected"], states
        transport.sendto(bytes(binding_request(params["usernameFragment"], params["password"])))
        assert await client.answer() is not None
        await asyncio.sleep(0.1)
        assert states[-1] == "completed"
        transport.close()
        await browser.close()


async def test_a_tuple_that_cannot_have_a_socket_of_its_own_stays_on_the_shared_one(
        server_with: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_socket(family: int) -> socket.socket:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(webrtc_server, "_reuse_port_socket", no_socket)
    async with server_with(in_process_workers=True) as server, aiohttp.ClientSession() as http:
        app = KolabApp(server, http)
        room = await app.create_room()
        browser = await joined(app, room)
        info = await new_transport(browser)
        params = info["iceParameters"]
        transport, client = await udp_client(info["iceCandidates"][0]["port"])
        try:
            for _ in range(3):
                transport.sendto(bytes(binding_request(params["usernameFragment"], params["password"])))
                assert await client.answer() is not None
            dump = (await server.rooms.get(room).router.worker.request("worker.dump"))["webrtcServer"]
            assert (dump["tuples"], dump["tuplesWithOwnSocket"]) == (1, 0), dump
        finally:
            transport.close()
            await browser.close()
