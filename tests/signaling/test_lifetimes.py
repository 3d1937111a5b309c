"""Lifetimes: the reconnect grace of dropped sockets, leaving, rooms closing when empty."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref
from typing import Any, Callable

import aiohttp
import pytest

from bench.join import join_one
from kolabmeet.app import Server
from tests.helpers import Browser, KolabApp, joined
from tests.signaling.common import (
    drop, methods, new_browser, pair, refused, room_status, room_status_until, server_peer, sync, until, webhook_sink,
)


async def test_drop_and_back_within_grace(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    alice, bob = await pair(app, browsers)
    grace = server.config.reconnect_grace
    await bob.ok("raisedHand", {"raisedHand": True})
    dropped_at = time.monotonic()
    await drop(bob)
    await until(lambda: server_peer(server, bob).sid is None)

    back = Browser(bob.url)
    browsers.append(back)
    await back.connect(wait_ready=False)
    assert await back.wait_for("roomBack") == {}
    assert time.monotonic() - dropped_at < grace
    # Past the end of the grace nobody was told anything, and the peer is whole.
    await asyncio.sleep(grace + 0.3 - (time.monotonic() - dropped_at))
    assert alice.seen("peerClosed") == []
    assert methods(back) == ["roomBack"]
    peer = server_peer(server, bob)
    assert peer is not None and peer.sid == back.sio.get_sid() and peer.joined
    assert (peer.nickname, peer.raised_hand) == ("bob", True)
    # Requests are served once each (no handlers piled up by the reconnect).
    await back.ok("chatMessage", {"message": "back"})
    await sync(back, alice)
    assert alice.seen("chatMessage", lambda d: d["message"] == "back") == [
        {"peerId": bob.peer_id, "nickname": "bob", "message": "back"}]
    # Still joined: a second join is refused.
    assert "already joined" in await back.fails("join", {"nickname": "bob", "rtpCapabilities": {}})


async def test_drop_twice_and_back(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    """Each drop starts a fresh grace; a return cancels it."""
    alice, bob = await pair(app, browsers)
    grace = server.config.reconnect_grace
    current = bob
    for _ in range(2):
        await drop(current)
        await until(lambda: server_peer(server, bob).sid is None)
        await asyncio.sleep(grace * 0.6)
        current = Browser(bob.url)
        browsers.append(current)
        await current.connect(wait_ready=False)
        await current.wait_for("roomBack")
    await asyncio.sleep(grace * 0.6)
    await sync(current, alice)
    assert alice.seen("peerClosed") == []


async def test_drop_not_back_within_grace(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    alice, bob = await pair(app, browsers)
    grace = server.config.reconnect_grace
    await drop(bob)
    dropped_at = time.monotonic()
    # Meanwhile bob stays in the room: a newcomer meets him.
    carol = await joined(app, alice.room_id, nickname="carol")
    browsers.append(carol)
    assert server_peer(server, bob) is not None
    assert await alice.wait_for("peerClosed", timeout=grace + 2) == {"peerId": bob.peer_id}
    assert time.monotonic() - dropped_at >= grace * 0.9
    assert await carol.wait_for("peerClosed") == {"peerId": bob.peer_id}
    assert server_peer(server, bob) is None
    # Its id and token stop working.
    await refused(bob.url)
    await sync(alice, carol)
    assert len(alice.seen("peerClosed")) == 1


async def test_join_response_lists_dropped_peer(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    alice, bob = await pair(app, browsers)
    await drop(bob)
    await until(lambda: server_peer(server, bob).sid is None)
    carol = Browser((await app.connection(alice.room_id, 3))["token"])
    browsers.append(carol)
    await carol.connect()
    response = await carol.ok("join", {"nickname": "carol", "rtpCapabilities": {}})
    assert sorted(p["id"] for p in response["peers"]) == sorted([alice.peer_id, bob.peer_id])


async def test_client_disconnect_closes_at_once(server_with: Callable[..., Any], http: aiohttp.ClientSession,
                                                browsers: list[Browser]) -> None:
    async with server_with(reconnect_grace=5.0) as srv:
        alice, bob = await pair(KolabApp(srv, http), browsers)
        left_at = time.monotonic()
        await bob.close()
        assert await alice.wait_for("peerClosed", timeout=1.0) == {"peerId": bob.peer_id}
        assert time.monotonic() - left_at < 1.0
        assert server_peer(srv, bob) is None
        await refused(bob.url)
        await alice.close()


async def test_empty_room_closes_after_timeout(server_with: Callable[..., Any], http: aiohttp.ClientSession,
                                               browsers: list[Browser]) -> None:
    async with webhook_sink() as sink:
        async with server_with(room_empty_timeout=1.0, webhook_url=sink.url) as srv:
            app = KolabApp(srv, http)
            room = await app.create_room()
            alice = await new_browser(app, room, browsers)
            await alice.close()
            left_at = time.monotonic()
            await until(lambda: server_peer(srv, alice) is None)
            await asyncio.sleep(0.5)
            assert await room_status(app, room) == 200
            assert sink.received == []
            await room_status_until(app, room, 404, timeout=3)
            assert time.monotonic() - left_at >= 0.9
            assert srv.rooms.get(room) is None
            assert await sink.wait_for("roomClosed") == {"roomId": room, "event": "roomClosed"}


async def test_socket_in_time_cancels_room_close(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    timeout = server.config.room_empty_timeout
    room = await app.create_room()
    alice = await new_browser(app, room, browsers)
    await alice.close()
    await until(lambda: server_peer(server, alice) is None)
    await asyncio.sleep(timeout * 0.5)
    bob = await new_browser(app, room, browsers)
    await asyncio.sleep(timeout)
    assert await room_status(app, room) == 200
    assert bob.sio.connected and await bob.ok("ping") is None
    # Once bob leaves too, the count starts again.
    await bob.close()
    await room_status_until(app, room, 404, timeout=timeout + 2)


async def test_returning_socket_cancels_room_close(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    """A last peer dropped and back within its grace keeps the room."""
    room = await app.create_room()
    alice = await new_browser(app, room, browsers)
    await drop(alice)
    await until(lambda: server_peer(server, alice).sid is None)
    back = Browser(alice.url)
    browsers.append(back)
    await back.connect(wait_ready=False)
    await back.wait_for("roomBack")
    await asyncio.sleep(server.config.reconnect_grace + server.config.room_empty_timeout + 0.3)
    assert await room_status(app, room) == 200
    assert await back.ok("ping") is None


async def test_last_peer_dropped_closes_room_after_grace_and_timeout(app: KolabApp, server: Server,
                                                                     browsers: list[Browser]) -> None:
    room = await app.create_room()
    alice = await new_browser(app, room, browsers)
    await drop(alice)
    dropped_at = time.monotonic()
    await room_status_until(app, room, 404, timeout=5)
    config = server.config
    assert time.monotonic() - dropped_at >= (config.reconnect_grace + config.room_empty_timeout) * 0.9


async def test_unused_tokens_do_not_keep_room(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    """A token the Kolab app made for someone who never came does not keep an empty room alive."""
    room = await app.create_room()
    await app.connection(room, 1)
    alice = await new_browser(app, room, browsers)
    await alice.close()
    await room_status_until(app, room, 404, timeout=server.config.room_empty_timeout + 2)


async def test_kicked_last_peer_closes_room(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    room = await app.create_room()
    alice = await new_browser(app, room, browsers, role=4)
    await alice.ok("moderator:kickPeer", {"peerId": alice.peer_id})
    await asyncio.wait_for(alice.disconnected.wait(), 2)
    assert alice.seen("moderator:kickPeer") == [{}]
    await room_status_until(app, room, 404, timeout=server.config.room_empty_timeout + 2)


@pytest.mark.slow
async def test_real_timers(server_with: Callable[..., Any], http: aiohttp.ClientSession,
                           browsers: list[Browser]) -> None:
    """The real 10 s: a dropped peer and an empty room are still there at 9 s, gone by 11 s."""
    async with server_with(reconnect_grace=10, room_empty_timeout=10) as srv:
        app = KolabApp(srv, http)
        alice, bob = await pair(app, browsers)
        empty_room = await app.create_room()
        carol = await new_browser(app, empty_room, browsers)

        await asyncio.gather(drop(bob), carol.close())
        start = time.monotonic()
        await until(lambda: server_peer(srv, bob).sid is None and server_peer(srv, carol) is None)

        await asyncio.sleep(9 - (time.monotonic() - start))
        assert alice.seen("peerClosed") == []
        assert server_peer(srv, bob) is not None
        assert await room_status(app, empty_room) == 200

        await asyncio.sleep(11 - (time.monotonic() - start))
        assert alice.seen("peerClosed") == [{"peerId": bob.peer_id}]
        assert server_peer(srv, bob) is None
        assert await room_status(app, empty_room) == 404
        await refused(bob.url)
        await alice.close()


async def test_stopping_while_clients_leave(server_with: Callable[..., Any], http: aiohttp.ClientSession) -> None:
    """Stopping closes the sockets still there, also when others leave at the same moment."""
    async with server_with() as srv:
        app = KolabApp(srv, http)
        room = await app.create_room()
        staying = [await joined(app, room, nickname=f"stays{i}") for i in range(2)]
        leaving = [await joined(app, room, nickname=f"leaves{i}") for i in range(2)]
        started = time.monotonic()
        await asyncio.gather(srv.stop(), *(browser.close() for browser in leaving))
        assert time.monotonic() - started < 3
        for browser in staying:
            await asyncio.wait_for(browser.disconnected.wait(), 2)
        assert srv.signaling.sio.eio.sockets == {} and not srv.signaling._open_sessions


async def test_a_peer_that_left_is_freed_without_the_collector(app: KolabApp, server: Server) -> None:
    """Its session (and aiohttp's objects under it), its peer and its transports hold no reference
    cycle: a long-running control process does not leave them to the collector, which scans
    everything it tracks."""
    room = await app.create_room()
    staying, _ = await join_one(app, room)
    leaving, _ = await join_one(app, room)
    peer = server.rooms.get(room).peers[leaving.peer_id]
    session = server.signaling.sessions[peer.sid]
    objects = [weakref.ref(o) for o in (peer, session, *peer.transports.values())]
    assert len(objects) == 4
    del peer, session
    gc.collect()
    gc.disable()
    try:
        await leaving.close()
        await until(lambda: leaving.peer_id not in server.rooms.get(room).peers)
        await until(lambda: all(ref() is None for ref in objects))
    finally:
        gc.enable()
    await staying.close()
