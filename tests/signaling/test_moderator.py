"""Moderator requests and their permission rules (PROTOCOL.md, "Requests from the client")."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Callable

import aiohttp
import pytest

from kolabmeet.app import Server
from tests.media.client_caps import CHROME_MIC_PRODUCER
from tests.helpers import Browser, KolabApp, joined
from tests.signaling.common import (
    MODERATOR, MODERATOR_ROLE, OWNER, OWNER_ROLE, PUBLISHER, SCREEN, SUBSCRIBER, methods, refused, room_status,
    server_peer, sync, until, webhook_sink,
)


async def meeting(app: KolabApp, browsers: list[Browser], *roles: int) -> list[Browser]:
    """Browsers joined to one new room with these roles, each having seen all the others."""
    room = await app.create_room()
    people = []
    for index, role in enumerate(roles):
        browser = await joined(app, room, role=role, nickname=f"p{index}")
        browsers.append(browser)
        people.append(browser)
    for browser in people:
        await sync(browser, *people)
    for browser in people:
        browser.notifications.clear()
    return people


# -- moderator:addRole ------------------------------------------------------------------------

async def test_add_role(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    mod, target, other = await meeting(app, browsers, MODERATOR_ROLE, SUBSCRIBER, SUBSCRIBER)
    assert await mod.ok("moderator:addRole", {"peerId": target.peer_id, "role": MODERATOR}) is None
    expected = {"peerId": target.peer_id, "role": SUBSCRIBER | MODERATOR}
    for browser in (mod, target, other):
        assert await browser.wait_for("changeRole") == expected
    assert server_peer(server, target).role == SUBSCRIBER | MODERATOR


async def test_add_role_needs_moderator(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    # Every bit but MODERATOR, OWNER included (an owner is moderator through its 4 bit only).
    sub, target = await meeting(app, browsers, SUBSCRIBER | PUBLISHER | SCREEN | OWNER, SUBSCRIBER)
    message = await sub.fails("moderator:addRole", {"peerId": target.peer_id, "role": PUBLISHER})
    assert "MODERATOR" in message
    await sync(sub, target)
    assert target.seen("changeRole") == []
    assert server_peer(server, target).role == SUBSCRIBER


@pytest.mark.parametrize("role", [32, 64, 1 | 32, -1, -2, "2", 2.0, None, True, [2]])
async def test_add_role_unknown_bits_or_wrong_type(app: KolabApp, server: Server, browsers: list[Browser],
                                                  role: Any) -> None:
    mod, target = await meeting(app, browsers, MODERATOR_ROLE, SUBSCRIBER)
    message = await mod.fails("moderator:addRole", {"peerId": target.peer_id, "role": role})
    assert "role" in message
    await sync(mod, target)
    assert target.seen("changeRole") == []
    assert server_peer(server, target).role == SUBSCRIBER


@pytest.mark.parametrize("role", [OWNER, OWNER | PUBLISHER, OWNER | MODERATOR])
async def test_add_role_owner_refused(app: KolabApp, server: Server, browsers: list[Browser], role: int) -> None:
    owner, target = await meeting(app, browsers, OWNER_ROLE, SUBSCRIBER)
    assert "OWNER" in await owner.fails("moderator:addRole", {"peerId": target.peer_id, "role": role})
    await sync(owner, target)
    assert target.seen("changeRole") == []
    assert server_peer(server, target).role == SUBSCRIBER


async def test_add_role_unknown_target(app: KolabApp, browsers: list[Browser]) -> None:
    mod, other = await meeting(app, browsers, MODERATOR_ROLE, SUBSCRIBER)
    unknown = str(uuid.uuid4())
    assert unknown in await mod.fails("moderator:addRole", {"peerId": unknown, "role": PUBLISHER})
    assert "peer" in await mod.fails("moderator:addRole", {"peerId": 5, "role": PUBLISHER})
    assert "peer" in await mod.fails("moderator:addRole", {"role": PUBLISHER})
    # A peer of another room is not "in the room".
    elsewhere = await meeting(app, browsers, SUBSCRIBER)
    assert "not in this room" in await mod.fails("moderator:addRole", {"peerId": elsewhere[0].peer_id,
                                                                      "role": PUBLISHER})
    assert server_peer(app.server, elsewhere[0]).role == SUBSCRIBER


async def test_add_role_no_op_when_target_has_any_bit(app: KolabApp, server: Server,
                                                      browsers: list[Browser]) -> None:
    mod, target = await meeting(app, browsers, MODERATOR_ROLE, SUBSCRIBER | PUBLISHER)
    assert await mod.ok("moderator:addRole", {"peerId": target.peer_id, "role": PUBLISHER | MODERATOR}) is None
    assert await mod.ok("moderator:addRole", {"peerId": target.peer_id, "role": SUBSCRIBER}) is None
    await sync(mod, target)
    assert target.seen("changeRole") == [] and mod.seen("changeRole") == []
    assert server_peer(server, target).role == SUBSCRIBER | PUBLISHER


async def test_add_publisher_lowers_raised_hand(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    mod, target = await meeting(app, browsers, MODERATOR_ROLE, SUBSCRIBER)
    await target.ok("raisedHand", {"raisedHand": True})
    await mod.wait_for("changeRaisedHand")
    await mod.ok("moderator:addRole", {"peerId": target.peer_id, "role": PUBLISHER})
    for browser in (mod, target):
        await browser.wait_for("changeRole")
        assert [n for n in browser.notifications if n["method"] in ("changeRaisedHand", "changeRole")] == [
            {"method": "changeRaisedHand", "data": {"peerId": target.peer_id, "raisedHand": True}},
            {"method": "changeRaisedHand", "data": {"peerId": target.peer_id, "raisedHand": False}},
            {"method": "changeRole", "data": {"peerId": target.peer_id, "role": SUBSCRIBER | PUBLISHER}},
        ]
    assert server_peer(server, target).raised_hand is False


async def test_add_publisher_without_raised_hand(app: KolabApp, browsers: list[Browser]) -> None:
    mod, target = await meeting(app, browsers, MODERATOR_ROLE, SUBSCRIBER)
    await mod.ok("moderator:addRole", {"peerId": target.peer_id, "role": PUBLISHER})
    await target.wait_for("changeRole")
    await sync(mod, target)
    assert target.seen("changeRaisedHand") == []


async def test_add_other_role_keeps_raised_hand(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    mod, target = await meeting(app, browsers, MODERATOR_ROLE, SUBSCRIBER)
    await target.ok("raisedHand", {"raisedHand": True})
    await mod.ok("moderator:addRole", {"peerId": target.peer_id, "role": SCREEN})
    await target.wait_for("changeRole")
    assert target.seen("changeRaisedHand") == [{"peerId": target.peer_id, "raisedHand": True}]
    assert server_peer(server, target).raised_hand is True


# -- moderator:removeRole ---------------------------------------------------------------------

async def test_remove_role_removes_bits(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    """Bits are cleared, not toggled: removing 2|4 from 3 gives 1 (XOR would give 5)."""
    mod, target, other = await meeting(app, browsers, MODERATOR_ROLE, SUBSCRIBER | PUBLISHER, SUBSCRIBER)
    await mod.ok("moderator:removeRole", {"peerId": target.peer_id, "role": PUBLISHER | MODERATOR})
    for browser in (mod, target, other):
        assert await browser.wait_for("changeRole") == {"peerId": target.peer_id, "role": SUBSCRIBER}
    assert server_peer(server, target).role == SUBSCRIBER


async def test_remove_role_no_op(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    mod, target = await meeting(app, browsers, MODERATOR_ROLE, SUBSCRIBER)
    assert await mod.ok("moderator:removeRole", {"peerId": target.peer_id, "role": PUBLISHER | SCREEN}) is None
    await sync(mod, target)
    assert target.seen("changeRole") == []
    assert server_peer(server, target).role == SUBSCRIBER


async def test_remove_role_needs_moderator(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    pub, target = await meeting(app, browsers, SUBSCRIBER | PUBLISHER | SCREEN, SUBSCRIBER | PUBLISHER)
    assert "MODERATOR" in await pub.fails("moderator:removeRole", {"peerId": target.peer_id, "role": PUBLISHER})
    assert server_peer(server, target).role == SUBSCRIBER | PUBLISHER


@pytest.mark.parametrize("role", [OWNER, OWNER | PUBLISHER])
async def test_remove_owner_refused(app: KolabApp, server: Server, browsers: list[Browser], role: int) -> None:
    mod, owner = await meeting(app, browsers, MODERATOR_ROLE, OWNER_ROLE)
    assert "OWNER" in await mod.fails("moderator:removeRole", {"peerId": owner.peer_id, "role": role})
    # Even the owner cannot drop its own OWNER bit.
    assert "OWNER" in await owner.fails("moderator:removeRole", {"peerId": owner.peer_id, "role": role})
    await sync(mod, owner)
    assert owner.seen("changeRole") == []
    assert server_peer(server, owner).role == OWNER_ROLE


async def test_remove_moderator_of_owner_refused(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    mod, owner = await meeting(app, browsers, MODERATOR_ROLE, OWNER_ROLE)
    for who in (mod, owner):
        message = await who.fails("moderator:removeRole", {"peerId": owner.peer_id, "role": MODERATOR})
        assert "MODERATOR" in message and "OWNER" in message
        await who.fails("moderator:removeRole", {"peerId": owner.peer_id, "role": MODERATOR | PUBLISHER})
    await sync(mod, owner)
    assert owner.seen("changeRole") == []
    assert server_peer(server, owner).role == OWNER_ROLE
    # Other bits of an owner can go.
    await mod.ok("moderator:removeRole", {"peerId": owner.peer_id, "role": PUBLISHER})
    assert await owner.wait_for("changeRole") == {"peerId": owner.peer_id, "role": MODERATOR | OWNER}


async def test_remove_moderator_of_moderator(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    owner, mod = await meeting(app, browsers, OWNER_ROLE, MODERATOR_ROLE)
    await owner.ok("moderator:removeRole", {"peerId": mod.peer_id, "role": MODERATOR})
    assert await mod.wait_for("changeRole") == {"peerId": mod.peer_id, "role": PUBLISHER}
    # No longer a moderator: its own moderator requests are refused.
    assert "MODERATOR" in await mod.fails("moderator:addRole", {"peerId": owner.peer_id, "role": SCREEN})


@pytest.mark.parametrize("role", [32, -1, "2", None, False])
async def test_remove_role_unknown_bits_or_wrong_type(app: KolabApp, server: Server, browsers: list[Browser],
                                                     role: Any) -> None:
    mod, target = await meeting(app, browsers, MODERATOR_ROLE, SUBSCRIBER | PUBLISHER)
    assert "role" in await mod.fails("moderator:removeRole", {"peerId": target.peer_id, "role": role})
    assert server_peer(server, target).role == SUBSCRIBER | PUBLISHER


async def test_remove_publisher_clears_language(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    mod, target = await meeting(app, browsers, MODERATOR_ROLE, SUBSCRIBER | PUBLISHER)
    await mod.ok("moderator:changeLanguage", {"peerId": target.peer_id, "language": "de"})
    await target.wait_for("changeLanguage")
    await mod.ok("moderator:removeRole", {"peerId": target.peer_id, "role": PUBLISHER})
    for browser in (mod, target):
        await browser.wait_for("changeRole")
        assert [n for n in browser.notifications if n["method"] in ("changeLanguage", "changeRole")] == [
            {"method": "changeLanguage", "data": {"peerId": target.peer_id, "language": "de"}},
            {"method": "changeLanguage", "data": {"peerId": target.peer_id, "language": None}},
            {"method": "changeRole", "data": {"peerId": target.peer_id, "role": SUBSCRIBER}},
        ]
    assert server_peer(server, target).language is None


async def test_remove_publisher_without_language(app: KolabApp, browsers: list[Browser]) -> None:
    mod, target = await meeting(app, browsers, MODERATOR_ROLE, SUBSCRIBER | PUBLISHER)
    await mod.ok("moderator:removeRole", {"peerId": target.peer_id, "role": PUBLISHER})
    await target.wait_for("changeRole")
    await sync(mod, target)
    assert target.seen("changeLanguage") == []


async def test_remove_publisher_keeps_producers(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    """Producers stay; only new ones are refused."""
    mod, target = await meeting(app, browsers, MODERATOR_ROLE, SUBSCRIBER | PUBLISHER)
    transport = await target.ok("createPlainTransport", {"producing": True, "consuming": False})
    produce = {"transportId": transport["id"], "kind": "audio", "rtpParameters": CHROME_MIC_PRODUCER,
               "appData": {"source": "mic", "extra": [1, 2]}}
    producer = await target.ok("produce", produce)
    assert set(producer) == {"id"}
    await mod.ok("moderator:removeRole", {"peerId": target.peer_id, "role": PUBLISHER})
    await target.wait_for("changeRole")
    peer = server_peer(server, target)
    assert list(peer.producers) == [producer["id"]] and not peer.producers[producer["id"]].closed
    assert peer.producers[producer["id"]].app_data == {"source": "mic", "extra": [1, 2]}
    assert await target.ok("pauseProducer", {"producerId": producer["id"]}) is None
    assert "PUBLISHER" in await target.fails("produce", produce)


# -- moderator:changeLanguage -----------------------------------------------------------------

async def test_change_language(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    mod, target, other = await meeting(app, browsers, MODERATOR_ROLE, SUBSCRIBER | PUBLISHER, SUBSCRIBER)
    for language in ["de", "de", "fr", "", "", None, None]:
        assert await mod.ok("moderator:changeLanguage", {"peerId": target.peer_id, "language": language}) is None
    await mod.ok("moderator:changeLanguage", {"peerId": target.peer_id})  # absent: null, so unchanged
    await mod.ok("moderator:changeLanguage", {"peerId": target.peer_id, "language": "en"})
    await sync(mod, target, other)
    expected = [{"peerId": target.peer_id, "language": lang} for lang in ["de", "fr", "", None, "en"]]
    for browser in (mod, target, other):
        assert browser.seen("changeLanguage") == expected
    assert server_peer(server, target).language == "en"


@pytest.mark.parametrize("language", ["DE", "deu", "d", "d1", "de ", " de", "dé", 5, True, ["de"], {"x": 1}])
async def test_change_language_bad_value(app: KolabApp, server: Server, browsers: list[Browser],
                                         language: Any) -> None:
    mod, target = await meeting(app, browsers, MODERATOR_ROLE, SUBSCRIBER | PUBLISHER)
    assert "language" in await mod.fails("moderator:changeLanguage", {"peerId": target.peer_id,
                                                                      "language": language})
    await sync(mod, target)
    assert target.seen("changeLanguage") == []
    assert server_peer(server, target).language is None


async def test_change_language_needs_moderator(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    pub, target = await meeting(app, browsers, SUBSCRIBER | PUBLISHER | OWNER, SUBSCRIBER | PUBLISHER)
    assert "MODERATOR" in await pub.fails("moderator:changeLanguage", {"peerId": target.peer_id, "language": "de"})
    # Not even of oneself.
    assert "MODERATOR" in await target.fails("moderator:changeLanguage", {"peerId": target.peer_id,
                                                                          "language": "de"})
    assert server_peer(server, target).language is None


async def test_change_language_unknown_target(app: KolabApp, browsers: list[Browser]) -> None:
    [mod] = await meeting(app, browsers, MODERATOR_ROLE)
    unknown = str(uuid.uuid4())
    assert unknown in await mod.fails("moderator:changeLanguage", {"peerId": unknown, "language": "de"})


# -- moderator:joinRequestAccept / joinRequestDeny --------------------------------------------

@pytest.mark.parametrize("method", ["moderator:joinRequestAccept", "moderator:joinRequestDeny"])
async def test_join_request_needs_moderator(app: KolabApp, browsers: list[Browser], method: str) -> None:
    [sub] = await meeting(app, browsers, SUBSCRIBER | PUBLISHER | SCREEN | OWNER)
    assert "MODERATOR" in await sub.fails(method, {"requestId": "r1"})
    assert sub.sio.connected


@pytest.mark.parametrize("method,event", [("moderator:joinRequestAccept", "joinRequestAccepted"),
                                          ("moderator:joinRequestDeny", "joinRequestDenied")])
async def test_join_request_answered_then_webhook(server_with: Callable[..., Any], http: aiohttp.ClientSession,
                                                  browsers: list[Browser], method: str, event: str) -> None:
    async with webhook_sink() as sink:
        async with server_with(webhook_url=sink.url, webhook_token="hook-secret") as srv:
            app = KolabApp(srv, http)
            [mod] = await meeting(app, browsers, MODERATOR_ROLE)
            # The ack is null (no arguments); requestId is not checked.
            assert await mod.request(method, {"requestId": "req-42"}) is None
            assert await sink.wait_for(event) == {"requestId": "req-42", "roomId": mod.room_id, "event": event}
            assert sink.received[0][0] == "hook-secret"
            assert await mod.request(method, {}) is None
            await mod.close()


async def test_join_request_answer_without_webhook(app: KolabApp, browsers: list[Browser]) -> None:
    [mod] = await meeting(app, browsers, MODERATOR_ROLE)
    assert await mod.request("moderator:joinRequestAccept", {"requestId": "x"}) is None
    assert await mod.request("moderator:joinRequestDeny", {"requestId": "x"}) is None


# -- moderator:kickPeer -----------------------------------------------------------------------

async def test_kick_peer(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    mod, target, other = await meeting(app, browsers, MODERATOR_ROLE, SUBSCRIBER, SUBSCRIBER)
    assert await mod.ok("moderator:kickPeer", {"peerId": target.peer_id}) is None
    await asyncio.wait_for(target.disconnected.wait(), 2)
    assert methods(target) == ["moderator:kickPeer"]
    assert target.seen("moderator:kickPeer") == [{}]
    for browser in (mod, other):
        assert await browser.wait_for("peerClosed") == {"peerId": target.peer_id}
    await until(lambda: server_peer(server, target) is None)
    # The kicked peer's token stops working.
    await refused(target.url)
    await sync(mod, other)
    assert methods(mod).count("peerClosed") == 1


async def test_kick_owner(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    mod, owner = await meeting(app, browsers, MODERATOR_ROLE, OWNER_ROLE)
    assert await mod.ok("moderator:kickPeer", {"peerId": owner.peer_id}) is None
    assert await owner.wait_for("moderator:kickPeer") == {}
    await asyncio.wait_for(owner.disconnected.wait(), 2)
    assert await mod.wait_for("peerClosed") == {"peerId": owner.peer_id}


async def test_kick_needs_moderator(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    sub, target = await meeting(app, browsers, SUBSCRIBER | PUBLISHER | SCREEN | OWNER, SUBSCRIBER)
    assert "MODERATOR" in await sub.fails("moderator:kickPeer", {"peerId": target.peer_id})
    await sync(sub, target)
    assert target.sio.connected and methods(target) == ["chatMessage"]
    assert server_peer(server, target) is not None


async def test_kick_unknown_peer(app: KolabApp, browsers: list[Browser]) -> None:
    mod, other = await meeting(app, browsers, MODERATOR_ROLE, SUBSCRIBER)
    unknown = str(uuid.uuid4())
    assert unknown in await mod.fails("moderator:kickPeer", {"peerId": unknown})
    assert "peer" in await mod.fails("moderator:kickPeer", {"peerId": None})
    await sync(mod, other)
    assert other.sio.connected and other.seen("peerClosed") == []


# -- moderator:closeRoom ----------------------------------------------------------------------

async def test_close_room_needs_owner(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    mod, owner = await meeting(app, browsers, MODERATOR_ROLE | SUBSCRIBER, OWNER_ROLE)
    assert "OWNER" in await mod.fails("moderator:closeRoom")
    await sync(mod, owner)
    assert owner.seen("moderator:closeRoom") == []
    assert await room_status(app, mod.room_id) == 200


async def test_close_room(server_with: Callable[..., Any], http: aiohttp.ClientSession,
                          browsers: list[Browser]) -> None:
    async with webhook_sink() as sink:
        async with server_with(webhook_url=sink.url, webhook_token="hook-secret") as srv:
            app = KolabApp(srv, http)
            owner, mod, sub = await meeting(app, browsers, OWNER_ROLE | SUBSCRIBER, MODERATOR_ROLE, SUBSCRIBER)
            room = owner.room_id
            idle = await app.connection(room, SUBSCRIBER)  # a token that never connects
            assert await owner.request("moderator:closeRoom") is None
            for browser in (owner, mod, sub):
                await asyncio.wait_for(browser.disconnected.wait(), 2)
            for browser in (mod, sub):
                assert methods(browser) == ["moderator:closeRoom"]
                assert browser.seen("moderator:closeRoom") == [None]
            assert methods(owner) == []
            assert await room_status(app, room) == 404
            assert srv.rooms.get(room) is None
            assert await sink.wait_for("roomClosed") == {"roomId": room, "event": "roomClosed"}
            assert [body["event"] for _token, body in sink.received] == ["roomClosed"]
            # Every token of the room, used or not, stops working; the room takes no new ones.
            for url in (owner.url, mod.url, idle["token"]):
                await refused(url.replace("ws://", "http://"))
            resp = await app.call("POST", f"/sessions/{room}/connection", json={"role": 1})
            assert resp.status == 404
            # The router is gone from its worker.
            assert srv.pool.workers[0].routers == {}


async def test_close_room_with_the_default_server(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    """GET /sessions/{id} answers 404 once the owner closed the room (via the `app` fixture)."""
    owner, guest = await meeting(app, browsers, OWNER_ROLE, SUBSCRIBER)
    assert await room_status(app, owner.room_id) == 200
    await owner.ok("moderator:closeRoom")
    assert await guest.wait_for("moderator:closeRoom") is None
    await asyncio.wait_for(guest.disconnected.wait(), 2)
    assert await room_status(app, owner.room_id) == 404
    assert guest.seen("peerClosed") == []
