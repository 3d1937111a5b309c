"""Every row of PROTOCOL.md's HTTP table, driven by aiohttp clients against a running server."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from yarl import URL

from kolabmeet.app import Server
from tests.helpers import API, TOKEN, Browser, KolabApp, joined
from tests.media.client_caps import AIORTC_AUDIO_PRODUCER

UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
MAX_BODY = 5 * 1024 * 1024


def is_uuid4(value: Any) -> bool:
    return isinstance(value, str) and UUID4.fullmatch(value) is not None and uuid.UUID(value).version == 4


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str

    def json(self) -> Any:
        return json.loads(self.body)


async def call(app: KolabApp, method: str, path: str, token: str | None = TOKEN, absolute: bool = False,
               **kwargs: Any) -> Reply:
    """A request to API + path (or to path if `absolute`), sent as written: not normalized, not re-encoded."""
    headers = kwargs.pop("headers", {})
    if token is not None:
        headers["X-Auth-Token"] = token
    url = URL(app.base + (path if absolute else API + path), encoded=True)
    async with app.session.request(method, url, headers=headers, **kwargs) as resp:
        return Reply(resp.status, await resp.read(), resp.content_type)


def assert_bad_request(resp: Reply) -> None:
    """400 with a JSON body {"error": "<what is wrong>"}."""
    assert resp.status == 400, resp
    assert resp.content_type == "application/json"
    body = resp.json()
    assert isinstance(body, dict) and isinstance(body["error"], str) and body["error"]


# ---------------------------------------------------------------- ping, health


async def test_ping_answers_pong_text(app: KolabApp) -> None:
    resp = await call(app, "GET", "/ping")
    assert resp.status == 200
    assert resp.content_type == "text/plain"
    assert resp.body.decode() == "PONG"


async def test_health(app: KolabApp) -> None:
    resp = await call(app, "GET", "/health")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    assert resp.json() == {"success": True, "message": "Healthy"}


# ---------------------------------------------------------------- sessions


async def test_post_sessions_gives_uuid4_rooms(app: KolabApp) -> None:
    for body in ({"json": []}, {"data": b""}, {"json": {"anything": 1}}, {"json": None}):
        resp = await call(app, "POST", "/sessions", **body)
        assert resp.status == 200, body
        answer = resp.json()
        assert list(answer) == ["id"] and is_uuid4(answer["id"]), answer
        assert (await call(app, "GET", f"/sessions/{answer['id']}")).status == 200


async def test_post_sessions_makes_no_router_yet(app: KolabApp) -> None:
    room_id = await app.create_room()
    assert app.server.rooms.get(room_id).router is None


async def test_sessions_list_in_creation_order_with_int_created_at(app: KolabApp) -> None:
    before = int(time.time())
    made = [await app.create_room() for _ in range(4)]
    after = int(time.time())
    resp = await call(app, "GET", "/sessions")
    assert resp.status == 200 and resp.content_type == "application/json"
    listed = resp.json()
    assert isinstance(listed, list)
    ours = [entry for entry in listed if entry["roomId"] in made]
    assert [entry["roomId"] for entry in ours] == made
    for entry in ours:
        assert set(entry) == {"roomId", "createdAt"}
        assert type(entry["createdAt"]) is int and before <= entry["createdAt"] <= after


async def test_get_session_200_or_404_with_empty_bodies(app: KolabApp) -> None:
    room_id = await app.create_room()
    found = await call(app, "GET", f"/sessions/{room_id}")
    assert found.status == 200 and found.body == b""
    for unknown in (str(uuid.uuid4()), "nope", room_id.upper(), room_id + "x"):
        missing = await call(app, "GET", f"/sessions/{unknown}")
        assert missing.status == 404 and missing.body == b"", unknown


async def test_closed_room_is_404_everywhere(app: KolabApp, browsers: list[Browser]) -> None:
    room_id = await app.create_room()
    owner = await joined(app, room_id, role=23)
    browsers.append(owner)
    assert await owner.ok("moderator:closeRoom") is None
    await asyncio.wait_for(owner.disconnected.wait(), 5)
    for _ in range(50):
        if app.server.rooms.get(room_id) is None:
            break
        await asyncio.sleep(0.02)
    resp = await call(app, "GET", f"/sessions/{room_id}")
    assert resp.status == 404 and resp.body == b""
    conn = await call(app, "POST", f"/sessions/{room_id}/connection", json={"role": 1})
    assert conn.status == 404 and conn.body == b""
    listed = (await call(app, "GET", "/sessions")).json()
    assert room_id not in [entry["roomId"] for entry in listed]


# ---------------------------------------------------------------- connection


def token_pattern(scheme: str, domain: str, room_id: str) -> re.Pattern[str]:
    return re.compile(rf"{scheme}://{re.escape(domain)}\?peerId=(?P<peer>[0-9a-f-]{{36}})"
                      rf"&roomId={re.escape(room_id)}&authToken=[0-9a-f]{{32}}")


async def test_connection_token_url_shape(app: KolabApp) -> None:
    room_id = await app.create_room()
    answer = await app.connection(room_id, role=2)
    assert set(answer) == {"id", "token"}
    assert is_uuid4(answer["id"])
    match = token_pattern("ws", app.server.config.public_domain, room_id).fullmatch(answer["token"])
    assert match is not None, answer["token"]
    assert match["peer"] == answer["id"]
    other = await app.connection(room_id, role=2)
    assert other["id"] != answer["id"]
    assert other["token"].rsplit("authToken=", 1)[1] != answer["token"].rsplit("authToken=", 1)[1]


async def test_connection_token_uses_public_domain_and_force_wss(server_with: Any, http: aiohttp.ClientSession) -> None:
    async with server_with(public_domain="meet.example.org", force_wss=True) as srv:
        app = KolabApp(srv, http)
        room_id = await app.create_room()
        answer = await app.connection(room_id)
        assert token_pattern("wss", "meet.example.org", room_id).fullmatch(answer["token"]), answer["token"]


@pytest.mark.parametrize("body", [None, {}, {"role": None}, [], {"other": 7}])
async def test_connection_role_defaults_to_0(app: KolabApp, browsers: list[Browser], body: Any) -> None:
    room_id = await app.create_room()
    kwargs = {} if body is None else {"json": body}
    resp = await call(app, "POST", f"/sessions/{room_id}/connection", **kwargs)
    assert resp.status == 200
    browser = Browser(resp.json()["token"])
    browsers.append(browser)
    await browser.connect()
    caps = await browser.ok("getRouterRtpCapabilities")
    answer = await browser.ok("join", {"nickname": "zero", "rtpCapabilities": caps})
    assert answer["role"] == 0
    assert answer["id"] == browser.peer_id


@pytest.mark.parametrize("role", [1, 2, 3, 6, 4 | 16 | 2 | 1, 31])
async def test_connection_role_is_the_joined_peers_role(app: KolabApp, browsers: list[Browser], role: int) -> None:
    room_id = await app.create_room()
    browser = Browser((await app.connection(room_id, role=role))["token"])
    browsers.append(browser)
    await browser.connect()
    caps = await browser.ok("getRouterRtpCapabilities")
    answer = await browser.ok("join", {"nickname": "someone", "rtpCapabilities": caps})
    assert answer["role"] == role and answer["nickname"] == "someone" and answer["peers"] == []


async def test_connection_unknown_room_404_empty(app: KolabApp) -> None:
    for room_id in (str(uuid.uuid4()), "nope"):
        resp = await call(app, "POST", f"/sessions/{room_id}/connection", json={"role": 1})
        assert resp.status == 404 and resp.body == b"", room_id


@pytest.mark.parametrize("role", ["2", "abc", 2.0, 2.5, True, False, -1, 32, 64, 1 << 40, [2], {"bits": 2}])
async def test_connection_bad_role_400(app: KolabApp, role: Any) -> None:
    room_id = await app.create_room()
    resp = await call(app, "POST", f"/sessions/{room_id}/connection", json={"role": role})
    assert_bad_request(resp)
    assert app.server.rooms.get(room_id).peers == {}


@pytest.mark.parametrize("data", [b"{", b"{'role': 1}", b'{"role": 1} x', b"\xff\xfe\x00{", b"role=1", b"NaN]"])
async def test_connection_bad_json_400(app: KolabApp, data: bytes) -> None:
    room_id = await app.create_room()
    resp = await call(app, "POST", f"/sessions/{room_id}/connection", data=data,
                          headers={"Content-Type": "application/json"})
    assert_bad_request(resp)
    assert app.server.rooms.get(room_id).peers == {}


# ---------------------------------------------------------------- signal


async def send_signal(app: KolabApp, **body: Any) -> None:
    resp = await call(app, "POST", "/signal", json=body)
    assert resp.status == 200
    assert resp.json() == {}


async def test_signal_unknown_room_200(app: KolabApp) -> None:
    await send_signal(app, roomId=str(uuid.uuid4()), type="joinRequest", data={"x": 1}, role=4)
    await send_signal(app, roomId="nope", type="joinRequest", data=None)


async def test_signal_room_without_sockets_200(app: KolabApp) -> None:
    room_id = await app.create_room()
    await app.connection(room_id, role=4)
    await send_signal(app, roomId=room_id, type="joinRequest", data={}, role=4)


ABSENT = object()


@pytest.mark.parametrize(("role", "receivers"), [
    (ABSENT, {"lurker", "sub", "pub", "owner"}),
    (None, {"lurker", "sub", "pub", "owner"}),
    (4, {"owner"}),
    (1, {"sub", "owner"}),
    (3, {"sub", "pub", "owner"}),
    (2 | 8, {"pub", "owner"}),
    (8, set()),
    (0, set()),
])
async def test_signal_fans_out_by_role(app: KolabApp, browsers: list[Browser], role: Any, receivers: set[str]) -> None:
    room_id = await app.create_room()
    peers = {
        "sub": await joined(app, room_id, role=1),
        "pub": await joined(app, room_id, role=2),
        "owner": await joined(app, room_id, role=23),
    }
    lurker = Browser((await app.connection(room_id))["token"])  # role 0, connected, never joined
    await lurker.connect()
    peers["lurker"] = lurker
    stranger = await joined(app, await app.create_room(), role=31)
    browsers.extend([*peers.values(), stranger])

    data = {"nickname": "Jane", "requestId": "req-1", "picture": "data:image/png;base64,AAAA"}
    body: dict[str, Any] = {"roomId": room_id, "type": "joinRequest", "data": data}
    if role is not ABSENT:
        body["role"] = role
    await send_signal(app, **body)
    # Notifications to one socket arrive in order: once the marker is there, so is the signal.
    await send_signal(app, roomId=room_id, type="marker", data=1)
    for browser in peers.values():
        assert await browser.wait_for("signal:marker") == 1
    got = {name for name, browser in peers.items() if browser.seen("signal:joinRequest")}
    assert got == receivers
    for name in receivers:
        assert peers[name].seen("signal:joinRequest") == [data]
    assert stranger.seen("signal:joinRequest") == [] and stranger.seen("signal:marker") == []


async def test_signal_without_data_gives_null(app: KolabApp, browsers: list[Browser]) -> None:
    room_id = await app.create_room()
    browser = await joined(app, room_id, role=4)
    browsers.append(browser)
    await send_signal(app, roomId=room_id, type="ping")
    assert await browser.wait_for("signal:ping", lambda data: True) is None


@pytest.mark.parametrize("body", [
    [], "joinRequest", 42, None,
    {"type": "joinRequest", "data": {}},
    {"roomId": 5, "type": "joinRequest"},
    {"roomId": None, "type": "joinRequest"},
    {"roomId": "r"},
    {"roomId": "r", "type": 7},
    {"roomId": "r", "type": ""},
    {"roomId": "r", "type": ["joinRequest"]},
    {"roomId": "r", "type": "joinRequest", "role": "4"},
    {"roomId": "r", "type": "joinRequest", "role": 4.0},
    {"roomId": "r", "type": "joinRequest", "role": True},
    {"roomId": "r", "type": "joinRequest", "role": -4},
    {"roomId": "r", "type": "joinRequest", "role": 32},
    {"roomId": "r", "type": "joinRequest", "role": [4]},
])
async def test_signal_wrong_types_400(app: KolabApp, body: Any) -> None:
    assert_bad_request(await call(app, "POST", "/signal", json=body))


@pytest.mark.parametrize("data", [b"", b"{", b'{"roomId": "r", "type": "t"', b"\xff\xff", b"[1,]", b"{'a': 1}"])
async def test_signal_bad_json_400(app: KolabApp, data: bytes) -> None:
    assert_bad_request(await call(app, "POST", "/signal", data=data, headers={"Content-Type": "application/json"}))


# ---------------------------------------------------------------- stats


async def test_stats_with_rooms_and_peers(app: KolabApp, browsers: list[Browser]) -> None:
    room_id = await app.create_room()
    empty_room = await app.create_room()
    alice = await joined(app, room_id, role=3, nickname="alice")
    bob = await joined(app, room_id, role=3, nickname="bob")
    browsers.extend([alice, bob])
    never = await app.connection(room_id, role=1)  # a token nobody connects with
    sending = await alice.ok("createPlainTransport", {"producing": True, "consuming": False})
    await bob.ok("createPlainTransport", {"producing": False, "consuming": True})
    produced = await alice.ok("produce", {"transportId": sending["id"], "kind": "audio",
                                          "rtpParameters": AIORTC_AUDIO_PRODUCER, "appData": {"source": "mic"}})
    offer = (await bob.wait_request("newConsumer"))[0]["data"]
    assert offer["producerId"] == produced["id"]

    resp = await asyncio.wait_for(call(app, "GET", "/stats"), 5)
    assert resp.status == 200 and resp.content_type == "application/json"
    stats = resp.json()
    assert stats[empty_room] == {}
    room = stats[room_id]
    assert set(room) == {alice.peer_id, bob.peer_id, never["id"]}
    for peer_id, peer in room.items():
        assert set(peer) == {"id", "nickname", "transports", "producers", "consumers"}
        assert peer["id"] == peer_id
        for key in ("transports", "producers", "consumers"):
            assert isinstance(peer[key], list)
            for entry in peer[key]:
                # mediasoup-style: a list of stats objects (empty for a producer that got no RTP yet)
                assert isinstance(entry, list) and all(isinstance(s, dict) and "type" in s for s in entry)
    assert room[alice.peer_id]["nickname"] == "alice" and room[bob.peer_id]["nickname"] == "bob"
    assert room[never["id"]] == {"id": never["id"], "nickname": None, "transports": [], "producers": [],
                                 "consumers": []}
    assert len(room[alice.peer_id]["transports"]) == 1 and len(room[alice.peer_id]["producers"]) == 1
    assert room[alice.peer_id]["consumers"] == []
    assert len(room[bob.peer_id]["transports"]) == 1 and len(room[bob.peer_id]["consumers"]) == 1
    assert room[bob.peer_id]["producers"] == []


async def test_stats_without_rooms(server_with: Any, http: aiohttp.ClientSession) -> None:
    async with server_with() as srv:
        resp = await call(KolabApp(srv, http), "GET", "/stats")
        assert resp.status == 200 and resp.json() == {}


# ---------------------------------------------------------------- X-Auth-Token, unknown paths


def every_route(room_id: str) -> list[tuple[str, str, Any]]:
    return [
        ("GET", "/ping", None),
        ("GET", "/health", None),
        ("GET", "/sessions", None),
        ("GET", f"/sessions/{room_id}", None),
        ("POST", "/sessions", []),
        ("POST", f"/sessions/{room_id}/connection", {"role": 1}),
        ("POST", "/signal", {"roomId": room_id, "type": "joinRequest", "data": {}, "role": 4}),
        ("GET", "/stats", None),
    ]


UNKNOWN_PATHS = [
    ("GET", "/"), ("GET", "/favicon.ico"), ("GET", "/meetmedia"), ("GET", "/meetmedia/api"),
    ("GET", "/meetmedia/api/"), ("GET", API + "/nope"), ("POST", API + "/ping"), ("DELETE", API + "/sessions"),
    ("GET", API + "/sessions/a/b"), ("PUT", API + "/signal"), ("GET", "/meetmedia/signalingx"),
    ("GET", "/meetmedia/signaling-admin"), ("GET", "/meetmedia/signaling/x"),
    ("GET", "/meetmedia/signaling/../api/ping"), ("GET", "/meetmedia/signaling/%2e%2e/api/ping"),
    ("GET", "/meetmedia/signaling/..%2fapi%2fping"), ("GET", "//meetmedia/api/ping"),
]

WRONG_TOKENS = [None, "", "wrong", TOKEN + "x", TOKEN[:-1], TOKEN.upper(), TOKEN.replace("-", "_")]


@pytest.mark.parametrize("token", WRONG_TOKENS)
async def test_every_route_403_empty_without_right_token(app: KolabApp, token: str | None) -> None:
    room_id = await app.create_room()
    for method, path, body in every_route(room_id):
        kwargs = {} if body is None else {"json": body}
        resp = await call(app, method, path, token=token, **kwargs)
        assert resp.status == 403, (method, path)
        assert resp.body == b"", (method, path)
    assert app.server.rooms.get(room_id).peers == {}


@pytest.mark.parametrize("token", [None, "wrong"])
async def test_unknown_paths_403_without_right_token(app: KolabApp, token: str | None) -> None:
    for method, path in UNKNOWN_PATHS:
        resp = await call(app, method, path, token=token, absolute=True)
        assert (resp.status, resp.body) == (403, b""), (method, path)


async def test_unknown_paths_404_with_token(app: KolabApp) -> None:
    for method, path in UNKNOWN_PATHS:
        status = (await call(app, method, path, absolute=True)).status
        # A known path with the wrong method may say 405; never anything served.
        assert status in (404, 405), (method, path, status)
        if method == "GET":
            assert status == 404, path


async def test_signaling_path_needs_no_token(app: KolabApp, browsers: list[Browser]) -> None:
    room_id = await app.create_room()
    browser = Browser((await app.connection(room_id))["token"])
    browsers.append(browser)
    await browser.connect()  # python-socketio asks for /meetmedia/signaling/
    for path in ("/meetmedia/signaling", "/meetmedia/signaling/"):
        resp = await call(app, "GET", path + "?EIO=4&transport=polling", token=None, absolute=True)
        assert resp.status != 403, path


# ---------------------------------------------------------------- queries, sizes, garbage


@pytest.mark.parametrize("query", ["?x=1", "?%zz", "?a=1&a=2&a", "?" + "q" * 4000, "?role=abc", "?&&&=="])
async def test_queries_are_ignored(app: KolabApp, query: str) -> None:
    room_id = await app.create_room()
    ping = await call(app, "GET", "/ping" + query)
    assert (ping.status, ping.body) == (200, b"PONG")
    session = await call(app, "GET", f"/sessions/{room_id}" + query)
    assert (session.status, session.body) == (200, b"")
    assert (await call(app, "GET", "/sessions" + query)).status == 200
    assert (await call(app, "POST", f"/sessions/{room_id}/connection" + query, json={"role": 1})).status == 200


async def test_body_over_5mb_413(app: KolabApp) -> None:
    room_id = await app.create_room()
    big = b"[" + b" " * MAX_BODY + b"]"
    for path in ("/sessions", f"/sessions/{room_id}/connection", "/signal"):
        resp = await call(app, "POST", path, data=big, headers={"Content-Type": "application/json"})
        assert resp.status == 413, path
    assert app.server.rooms.get(room_id).peers == {}


async def test_body_of_5mb_accepted(app: KolabApp, browsers: list[Browser]) -> None:
    room_id = await app.create_room()
    browser = await joined(app, room_id, role=4)
    browsers.append(browser)
    prefix = f'{{"roomId": "{room_id}", "type": "big", "data": "'.encode()
    body = prefix + b"x" * (MAX_BODY - len(prefix) - 2) + b'"}'
    assert len(body) == MAX_BODY
    resp = await call(app, "POST", "/signal", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 200


GARBAGE = [
    b"\x00" * 64, bytes(range(256)), b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000,
    b"1" * 5000, b"1e999999", b'"\\ud800"', b"\xef\xbb\xbf{}", b"null", b"true", b"[]", b"{}", b"-",
    b'{"roomId": {"$gt": ""}, "type": {}}', b'{"role": 1e400}', b'{"role": NaN}', b'{"role": Infinity}',
    b'{"role": ' + b"9" * 5000 + b"}",
]


async def test_garbage_bodies_never_500(app: KolabApp) -> None:
    room_id = await app.create_room()
    for data in GARBAGE:
        for method, path in (("POST", "/sessions"), ("POST", f"/sessions/{room_id}/connection"), ("POST", "/signal"),
                             ("GET", "/ping"), ("GET", "/stats"), ("GET", f"/sessions/{room_id}")):
            for content_type in ("application/json", "text/plain", "application/x-www-form-urlencoded"):
                resp = await call(app, method, path, data=data, headers={"Content-Type": content_type})
                assert resp.status in (200, 400), (method, path, data[:40], resp.status)
                if resp.status == 400:
                    assert resp.json()["error"]
    assert (await call(app, "GET", "/ping")).status == 200


async def test_no_500_for_wrong_content_encoding(app: KolabApp) -> None:
    resp = await call(app, "POST", "/signal", data=b"not gzip at all",
                          headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert resp.status in (400, 413)


async def test_many_requests_at_once(app: KolabApp) -> None:
    room_id = await app.create_room()
    answers = await asyncio.gather(*(app.connection(room_id, role=1) for _ in range(50)))
    assert len({answer["id"] for answer in answers}) == 50


async def test_server_fixture_is_a_real_listener(server: Server) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(f"GET {API}/ping HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {TOKEN}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    response = await reader.read()
    writer.close()
    assert response.startswith(b"HTTP/1.1 200") and response.endswith(b"PONG")
