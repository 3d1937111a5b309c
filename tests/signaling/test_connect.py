"""Socket connection: refusals, roomReady, paths, origins, replaced sockets, racing peers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
import uuid
from typing import Any, Callable

import aiohttp
import pytest

from kolabmeet.app import Server
from kolabmeet.media.capabilities import router_rtp_capabilities
from kolabmeet.media.errors import WorkerDiedError
from tests.helpers import Browser, KolabApp, joined
from tests.signaling.common import (
    methods, new_browser, pair, refused, room_status, room_status_until, server_peer, sync, until, with_query,
)


@pytest.mark.parametrize("change", [
    pytest.param({"peerId": None}, id="no-peerId"),
    pytest.param({"roomId": None}, id="no-roomId"),
    pytest.param({"authToken": None}, id="no-authToken"),
    pytest.param({"peerId": ""}, id="empty-peerId"),
    pytest.param({"roomId": ""}, id="empty-roomId"),
    pytest.param({"authToken": ""}, id="empty-authToken"),
    pytest.param({"roomId": "UNKNOWN"}, id="unknown-room"),
    pytest.param({"peerId": "UNKNOWN"}, id="unknown-peer"),
    pytest.param({"authToken": "0" * 32}, id="wrong-token"),
    pytest.param({"authToken": "short"}, id="wrong-token-length"),
])
async def test_refused_sockets(app: KolabApp, server: Server, browsers: list[Browser],
                               change: dict[str, str | None]) -> None:
    room = await app.create_room()
    token = (await app.connection(room, 2))["token"]
    resolved = {key: (str(uuid.uuid4()) if value == "UNKNOWN" else value) for key, value in change.items()}
    await refused(with_query(token, **resolved))
    # The refusal harmed neither the room nor the token: the right URL still works.
    assert await room_status(app, room) == 200
    browser = Browser(token)
    browsers.append(browser)
    await browser.connect()
    assert browser.seen("roomReady") == [{"iceServers": None, "roomId": room}]


async def test_peer_of_another_room_refused(app: KolabApp, browsers: list[Browser]) -> None:
    room_a, room_b = await app.create_room(), await app.create_room()
    token_a = (await app.connection(room_a, 2))["token"]
    await app.connection(room_b, 2)
    await refused(with_query(token_a, roomId=room_b))
    alice = await new_browser(app, room_b, browsers)
    assert alice.seen("roomReady") == [{"iceServers": None, "roomId": room_b}]


async def test_refused_socket_leaves_peer_untouched(app: KolabApp, server: Server) -> None:
    """A wrong token neither takes the peer's place nor closes it."""
    room = await app.create_room()
    connection = await app.connection(room, 2)
    await refused(with_query(connection["token"], authToken="f" * 32))
    peer = server.rooms.get(room).peers[connection["id"]]
    assert peer.sid is None and not peer.ready and not peer.closed


async def test_room_ready(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    room = await app.create_room()
    browser = await new_browser(app, room, browsers)
    assert browser.notifications == [{"method": "roomReady", "data": {"iceServers": None, "roomId": room}}]
    peer = server_peer(server, browser)
    assert peer is not None and peer.ready and peer.sid == browser.sio.get_sid()
    assert peer.router is server.rooms.get(room).router is not None


async def test_room_ready_with_turn(server_with: Callable[..., Any], http: aiohttp.ClientSession,
                                   browsers: list[Browser]) -> None:
    turn = "turn:turn.example:3478?transport=tcp"
    async with server_with(turn_server=turn, turn_static_secret="s3cret") as srv:
        app = KolabApp(srv, http)
        room = await app.create_room()
        before = int(time.time())
        browser = await new_browser(app, room, browsers)
        ready = browser.seen("roomReady")[0]
        assert ready["roomId"] == room
        [server_entry] = ready["iceServers"]
        assert set(server_entry) == {"urls", "username", "credential"}
        assert server_entry["urls"] == [turn]
        expiry, peer_id = server_entry["username"].split(":")
        assert peer_id == browser.peer_id
        assert before + 86400 <= int(expiry) <= int(time.time()) + 86400
        digest = hmac.new(b"s3cret", server_entry["username"].encode(), hashlib.sha1).digest()
        assert server_entry["credential"] == base64.b64encode(digest).decode()
        await browser.close()


async def test_path_with_trailing_slash(app: KolabApp, browsers: list[Browser]) -> None:
    room = await app.create_room()
    browser = Browser((await app.connection(room, 2))["token"])
    browsers.append(browser)
    await browser.connect(path="/meetmedia/signaling/")
    assert "/meetmedia/signaling/?" in browser.sio.eio.base_url
    assert await browser.ok("ping") is None


async def test_path_without_trailing_slash(app: KolabApp, browsers: list[Browser]) -> None:
    room = await app.create_room()
    browser = Browser((await app.connection(room, 2))["token"])
    browsers.append(browser)
    # python-socketio always adds the slash; take it away to connect as other clients may.
    make_url = browser.sio.eio._get_engineio_url
    browser.sio.eio._get_engineio_url = lambda *args: make_url(*args).replace("/?", "?", 1)
    await browser.connect()
    assert "/meetmedia/signaling?" in browser.sio.eio.base_url
    assert await browser.ok("ping") is None


async def test_origin_of_another_site(app: KolabApp, browsers: list[Browser]) -> None:
    room = await app.create_room()
    browser = Browser((await app.connection(room, 2))["token"])
    browsers.append(browser)
    await browser.connect(headers={"Origin": "https://kolab.example"})
    assert browser.seen("roomReady") == [{"iceServers": None, "roomId": room}]
    assert await browser.ok("ping") is None


async def test_second_socket_replaces_first(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    alice, bob = await pair(app, browsers)
    bob2 = Browser(bob.url)
    browsers.append(bob2)
    await bob2.connect(wait_ready=False)
    assert await bob2.wait_for("roomBack") == {}
    await asyncio.wait_for(bob.disconnected.wait(), 2)
    assert bob2.seen("roomReady") == []
    assert server_peer(server, bob2).sid == bob2.sio.get_sid()

    # Requests of the new socket are served once, as the same peer.
    await bob2.ok("chatMessage", {"message": "still here"})
    await alice.wait_for("chatMessage", lambda d: d["message"] == "still here")
    await sync(bob2, alice)
    assert alice.seen("chatMessage", lambda d: d["message"] == "still here") == [
        {"peerId": bob.peer_id, "nickname": "bob", "message": "still here"}]
    # Nobody is told, even after the reconnect grace.
    await asyncio.sleep(server.config.reconnect_grace + 0.3)
    assert alice.seen("peerClosed") == []
    assert bob.peer_id in server.rooms.get(bob.room_id).peers
    assert bob2.sio.connected


async def test_peers_connecting_at_once_share_one_router(app: KolabApp, server: Server,
                                                         browsers: list[Browser]) -> None:
    room_id = await app.create_room()
    tokens = [(await app.connection(room_id, 2))["token"] for _ in range(6)]
    routers_before = {r for w in server.pool.workers for r in w.routers}
    crowd = [Browser(token) for token in tokens]
    browsers.extend(crowd)
    await asyncio.gather(*(b.connect() for b in crowd))
    room = server.rooms.get(room_id)
    assert room.router is not None
    assert all(peer.router is room.router for peer in room.peers.values())
    assert room.router.peer_count == 6
    routers_after = {r for w in server.pool.workers for r in w.routers}
    assert routers_after - routers_before == {room.router.id}


async def test_requests_without_join(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    """Nothing requires join; a peer that never joins is no peer to the others."""
    room = await app.create_room()
    alice = await joined(app, room, nickname="alice")
    browsers.append(alice)
    lurker = await new_browser(app, room, browsers, role=1)
    assert await lurker.ok("ping") is None
    assert (await lurker.ok("getRouterRtpCapabilities"))["codecs"]
    assert await lurker.ok("chatMessage", {"message": "hi"}) is None
    assert await alice.wait_for("chatMessage", lambda d: d["message"] == "hi") == {
        "peerId": lurker.peer_id, "nickname": None, "message": "hi"}
    assert await lurker.ok("raisedHand", {"raisedHand": True}) is None
    await alice.wait_for("changeRaisedHand", lambda d: d["peerId"] == lurker.peer_id)

    bob = await joined(app, room, nickname="bob")
    browsers.append(bob)
    await lurker.close()
    await sync(bob, alice)
    assert alice.seen("newPeer", lambda d: d["id"] == lurker.peer_id) == []
    assert alice.seen("peerClosed") == []
    await until(lambda: lurker.peer_id not in server.rooms.get(room).peers)


async def test_join_response_leaves_out_peers_that_never_joined(app: KolabApp, browsers: list[Browser]) -> None:
    room = await app.create_room()
    lurker = await new_browser(app, room, browsers, role=1)
    alice = Browser((await app.connection(room, 3))["token"])
    browsers.append(alice)
    await alice.connect()
    response = await alice.ok("join", {"nickname": "alice", "rtpCapabilities": router_rtp_capabilities()})
    assert response["peers"] == []
    await lurker.wait_for("newPeer")  # the lurker has a socket in the room, so it hears of alice


async def test_requests_before_room_ready(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    """While the router is being picked the socket is connected; its requests wait for roomReady."""
    room_id = await app.create_room()
    room = server.rooms.get(room_id)
    browser = Browser((await app.connection(room_id, 2))["token"])
    browsers.append(browser)
    async with room._router_lock:
        await browser.connect(wait_ready=False)
        early = asyncio.ensure_future(browser.ok("getRouterRtpCapabilities"))
        await asyncio.sleep(0.3)
        assert not early.done()
        assert browser.notifications == []
    assert (await early)["codecs"]
    assert methods(browser) == ["roomReady"]
    assert browser.sio.connected


async def test_two_sockets_of_one_new_peer_at_once(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    """The later socket replaces the earlier one; the peer is announced ready once."""
    room = await app.create_room()
    token = (await app.connection(room, 2))["token"]
    first, second = Browser(token), Browser(token)
    browsers.extend([first, second])
    await asyncio.gather(first.connect(wait_ready=False), second.connect(wait_ready=False))
    await until(lambda: first.disconnected.is_set() or second.disconnected.is_set())
    survivor = second if first.disconnected.is_set() else first
    await survivor.wait_for("roomReady")
    assert await survivor.ok("ping") is None
    await asyncio.sleep(0.2)
    assert methods(survivor) == ["roomReady"]
    assert methods(first if survivor is second else second) == []
    assert server_peer(server, survivor).sid == survivor.sio.get_sid()


async def test_no_router_refuses_socket_and_room_still_closes(app: KolabApp, server: Server,
                                                              browsers: list[Browser],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A socket whose peer gets no router (its worker died) is refused; the room does not leak."""
    room_id = await app.create_room()
    room = server.rooms.get(room_id)

    async def no_router(peer: Any) -> None:
        raise WorkerDiedError("media worker 0 is gone")

    monkeypatch.setattr(room, "router_for", no_router)
    token = (await app.connection(room_id, 2))["token"]
    await refused(with_query(token))
    assert all(peer.sid is None for peer in room.peers.values())
    await room_status_until(app, room_id, 404, timeout=server.config.room_empty_timeout + 2)
