"""Webhooks: room events POSTed to a real HTTP receiver; a slow or dead receiver never blocks a room."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable

import aiohttp
import pytest
from aiohttp import web

from kolabmeet.api import webhooks
from kolabmeet.app import Server
from tests.helpers import Browser, KolabApp, free_port, joined

HOOK_TOKEN = "hook-secret-token"
EMPTY_TIMEOUT = 0.5


@dataclass
class Post:
    token: str | None
    content_type: str
    body: Any
    at: float


class Receiver:
    """The Kolab app's webhook endpoint: records every POST; answers 200, 500, or hangs."""

    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode
        self.posts: list[Post] = []
        self._changed = asyncio.Event()
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        self.posts.append(Post(request.headers.get("X-Auth-Token"), request.content_type,
                               await request.json(), time.monotonic()))
        self._changed.set()
        if self.mode == "hang":
            await self._release.wait()
        return web.Response(status=500 if self.mode == "fail" else 200)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def events(self, event: str) -> list[Post]:
        return [post for post in self.posts if post.body.get("event") == event]

    async def wait_for(self, event: str, predicate: Callable[[Any], bool] = lambda body: True,
                       timeout: float = 5.0) -> Post:
        async def until() -> Post:
            while True:
                found = [post for post in self.events(event) if predicate(post.body)]
                if found:
                    return found[0]
                self._changed.clear()
                await self._changed.wait()
        return await asyncio.wait_for(until(), timeout)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    await rec.start()
    yield rec
    await rec.stop()


@pytest.fixture
async def hanging_receiver() -> AsyncIterator[Receiver]:
    rec = Receiver("hang")
    await rec.start()
    yield rec
    await rec.stop()


@pytest.fixture
async def hooked(server_with: Any, receiver: Receiver, http: aiohttp.ClientSession) -> AsyncIterator[KolabApp]:
    """A server whose webhooks go to `receiver`, rooms closing 0.5 s after their last peer."""
    async with server_with(webhook_url=receiver.url, webhook_token=HOOK_TOKEN,
                           room_empty_timeout=EMPTY_TIMEOUT) as srv:
        yield KolabApp(srv, http)


async def session_status(app: KolabApp, room_id: str) -> int:
    return (await app.call("GET", f"/sessions/{room_id}")).status


async def wait_room_gone(server: Server, room_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while server.rooms.get(room_id) is not None:
        assert time.monotonic() < deadline, f"room {room_id} still there after {timeout} s"
        await asyncio.sleep(0.02)


def warnings_about(caplog: pytest.LogCaptureFixture, word: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "kolabmeet.webhooks" and r.levelno >= logging.WARNING and word in r.getMessage()]


async def wait_logged(caplog: pytest.LogCaptureFixture, word: str, count: int, timeout: float = 5.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while len(warnings_about(caplog, word)) < count:
        assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
        await asyncio.sleep(0.02)
    return warnings_about(caplog, word)


def test_webhook_timeout_is_5_seconds() -> None:
    assert webhooks.WEBHOOK_TIMEOUT == 5.0


# ---------------------------------------------------------------- roomClosed


async def test_room_closed_after_last_peer_leaves(hooked: KolabApp, receiver: Receiver,
                                                  browsers: list[Browser]) -> None:
    room_id = await hooked.create_room()
    alice = await joined(hooked, room_id, nickname="alice")
    bob = await joined(hooked, room_id, nickname="bob")
    browsers.extend([alice, bob])
    await alice.close()
    await bob.wait_for("peerClosed", lambda data: data["peerId"] == alice.peer_id)
    await asyncio.sleep(EMPTY_TIMEOUT + 0.2)
    assert await session_status(hooked, room_id) == 200, "a room with a peer in it must stay"
    assert receiver.events("roomClosed") == []

    await bob.close()
    left = time.monotonic()
    post = await receiver.wait_for("roomClosed", timeout=5)
    assert post.body == {"roomId": room_id, "event": "roomClosed"}
    assert post.token == HOOK_TOKEN
    assert post.content_type == "application/json"
    assert post.at - left >= EMPTY_TIMEOUT - 0.1, "closed before its empty-room timeout"
    assert post.at - left < EMPTY_TIMEOUT + 2
    assert await session_status(hooked, room_id) == 404
    listed = await (await hooked.call("GET", "/sessions")).json()
    assert room_id not in [entry["roomId"] for entry in listed]
    await asyncio.sleep(0.1)
    assert len(receiver.events("roomClosed")) == 1


async def test_a_socket_connecting_cancels_the_self_destruct(hooked: KolabApp, receiver: Receiver,
                                                             browsers: list[Browser]) -> None:
    room_id = await hooked.create_room()
    alice = await joined(hooked, room_id)
    browsers.append(alice)
    await alice.close()
    await asyncio.sleep(EMPTY_TIMEOUT / 3)
    bob = await joined(hooked, room_id)  # token asked for after alice left, as a late comer does
    browsers.append(bob)
    await asyncio.sleep(EMPTY_TIMEOUT + 0.3)
    assert await session_status(hooked, room_id) == 200
    assert receiver.events("roomClosed") == []
    await bob.close()
    post = await receiver.wait_for("roomClosed", timeout=5)
    assert post.body["roomId"] == room_id


async def test_room_closes_even_with_a_peer_that_never_connected(hooked: KolabApp, receiver: Receiver,
                                                                 browsers: list[Browser]) -> None:
    room_id = await hooked.create_room()
    alice = await joined(hooked, room_id)
    browsers.append(alice)
    await hooked.connection(room_id, role=1)  # someone opened the meeting page but never connected
    await alice.close()
    post = await receiver.wait_for("roomClosed", timeout=EMPTY_TIMEOUT + 0.7)
    assert post.body["roomId"] == room_id


async def test_room_closed_by_owner(hooked: KolabApp, receiver: Receiver, browsers: list[Browser]) -> None:
    room_id = await hooked.create_room()
    other_room = await hooked.create_room()
    owner = await joined(hooked, room_id, role=4 | 16 | 2 | 1)
    guest = await joined(hooked, room_id, role=1)
    bystander = await joined(hooked, other_room, role=1)
    browsers.extend([owner, guest, bystander])
    assert await owner.request("moderator:closeRoom") is None
    assert await guest.wait_for("moderator:closeRoom") is None
    post = await receiver.wait_for("roomClosed", timeout=EMPTY_TIMEOUT)  # at once, not after the timeout
    assert post.body == {"roomId": room_id, "event": "roomClosed"} and post.token == HOOK_TOKEN
    await asyncio.wait_for(owner.disconnected.wait(), 5)
    await asyncio.wait_for(guest.disconnected.wait(), 5)
    assert await session_status(hooked, room_id) == 404
    assert await session_status(hooked, other_room) == 200
    assert not bystander.disconnected.is_set()
    assert guest.seen("peerClosed") == []
    await asyncio.sleep(EMPTY_TIMEOUT + 0.2)
    assert [p.body["roomId"] for p in receiver.events("roomClosed")] == [room_id]


async def test_only_an_owner_closes_the_room(hooked: KolabApp, receiver: Receiver, browsers: list[Browser]) -> None:
    room_id = await hooked.create_room()
    moderator = await joined(hooked, room_id, role=4 | 2 | 1)
    browsers.append(moderator)
    await moderator.fails("moderator:closeRoom")
    await asyncio.sleep(0.1)
    assert await session_status(hooked, room_id) == 200
    assert receiver.events("roomClosed") == []


# ---------------------------------------------------------------- join requests


@pytest.mark.parametrize(("method", "event"), [("moderator:joinRequestAccept", "joinRequestAccepted"),
                                               ("moderator:joinRequestDeny", "joinRequestDenied")])
async def test_join_request_answer_webhook(hooked: KolabApp, receiver: Receiver, browsers: list[Browser],
                                           method: str, event: str) -> None:
    room_id = await hooked.create_room()
    guest = await joined(hooked, room_id, role=3)
    moderator = await joined(hooked, room_id, role=4 | 16 | 2 | 1)
    browsers.extend([guest, moderator])
    assert (await guest.fails(method, {"requestId": "from-a-guest"})).startswith(f"request {method} failed")

    assert await moderator.request(method, {"requestId": "req-42"}) is None
    post = await receiver.wait_for(event)
    assert post.body == {"requestId": "req-42", "roomId": room_id, "event": event}
    assert post.token == HOOK_TOKEN and post.content_type == "application/json"
    await asyncio.sleep(0.1)
    assert [p.body["requestId"] for p in receiver.posts] == ["req-42"], "the guest's refused answer sent a webhook"


async def test_join_request_ids_are_passed_unchecked(hooked: KolabApp, receiver: Receiver,
                                                     browsers: list[Browser]) -> None:
    room_id = await hooked.create_room()
    moderator = await joined(hooked, room_id, role=4)
    browsers.append(moderator)
    for request_id in ("a", "b", "c"):
        assert await moderator.request("moderator:joinRequestAccept", {"requestId": request_id}) is None
    for request_id in ("a", "b", "c"):
        await receiver.wait_for("joinRequestAccepted", lambda body, rid=request_id: body["requestId"] == rid)
    assert all(p.body["roomId"] == room_id for p in receiver.posts)


# ---------------------------------------------------------------- receivers that fail


async def assert_room_is_responsive(app: KolabApp, room_id: str, moderator: Browser) -> None:
    """Requests and HTTP calls answered quickly while webhooks are stuck."""
    started = time.monotonic()
    for index in range(3):
        assert await moderator.request("moderator:joinRequestAccept", {"requestId": f"r{index}"}) is None
    assert (await app.call("GET", "/ping")).status == 200
    late = await joined(app, room_id, role=1, nickname="late")
    await moderator.wait_for("newPeer", lambda data: data["id"] == late.peer_id)
    await late.close()
    assert time.monotonic() - started < 1.0


async def test_hanging_receiver_never_blocks_the_room(server_with: Any, hanging_receiver: Receiver,
                                                      http: aiohttp.ClientSession, browsers: list[Browser],
                                                      caplog: pytest.LogCaptureFixture,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.WARNING, logger="kolabmeet.webhooks")
    monkeypatch.setattr(webhooks, "WEBHOOK_TIMEOUT", 0.5)  # 5 s in production
    async with server_with(webhook_url=hanging_receiver.url, webhook_token=HOOK_TOKEN,
                           room_empty_timeout=EMPTY_TIMEOUT) as srv:
        app = KolabApp(srv, http)
        room_id = await app.create_room()
        owner = await joined(app, room_id, role=23)
        browsers.append(owner)
        await assert_room_is_responsive(app, room_id, owner)
        await hanging_receiver.wait_for("joinRequestAccepted", lambda body: body["requestId"] == "r2")
        assert await owner.request("moderator:closeRoom") is None
        await wait_room_gone(srv, room_id, timeout=0.5)
        assert await session_status(app, room_id) == 404
        await hanging_receiver.wait_for("roomClosed")
        messages = await wait_logged(caplog, "failed", count=4, timeout=3)
        assert any("roomClosed" in message for message in messages)
        assert all(hanging_receiver.url in message for message in messages)


async def test_receiver_down_never_blocks_and_is_logged(server_with: Any, http: aiohttp.ClientSession,
                                                        browsers: list[Browser],
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="kolabmeet.webhooks")
    down_url = f"http://127.0.0.1:{free_port()}/hook"
    async with server_with(webhook_url=down_url, webhook_token=HOOK_TOKEN, room_empty_timeout=EMPTY_TIMEOUT) as srv:
        app = KolabApp(srv, http)
        room_id = await app.create_room()
        owner = await joined(app, room_id, role=23)
        browsers.append(owner)
        await assert_room_is_responsive(app, room_id, owner)
        await owner.close()
        await wait_room_gone(srv, room_id, timeout=EMPTY_TIMEOUT + 1)
        messages = await wait_logged(caplog, "failed", count=4)
        assert any("roomClosed" in message for message in messages)
        assert any("joinRequestAccepted" in message for message in messages)
        assert (await app.call("GET", "/ping")).status == 200


async def test_receiver_error_status_is_logged(server_with: Any, http: aiohttp.ClientSession,
                                               browsers: list[Browser], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="kolabmeet.webhooks")
    failing = Receiver("fail")
    await failing.start()
    try:
        async with server_with(webhook_url=failing.url, webhook_token=HOOK_TOKEN) as srv:
            app = KolabApp(srv, http)
            room_id = await app.create_room()
            moderator = await joined(app, room_id, role=4)
            browsers.append(moderator)
            assert await moderator.request("moderator:joinRequestDeny", {"requestId": "x"}) is None
            await failing.wait_for("joinRequestDenied")
            messages = await wait_logged(caplog, "500", count=1)
            assert "joinRequestDenied" in messages[0]
            assert len(failing.posts) == 1, "webhooks are never retried"
            await moderator.close()
    finally:
        await failing.stop()
