"""Requests of PROTOCOL.md's table (room and media rows) and malformed requests."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from kolabmeet.app import Server
from kolabmeet.media.capabilities import router_rtp_capabilities
from kolabmeet.signaling.requests.media import MAX_TRANSPORTS
from tests.helpers import Browser, KolabApp, joined
from tests.media.client_caps import CHROME_MIC_PRODUCER
from tests.signaling.common import ack_arguments, new_browser, room_status, server_peer, sync

CAPS = router_rtp_capabilities()


async def pair(app: KolabApp, browsers: list[Browser], alice_role: int = 3,
               bob_role: int = 3) -> tuple[Browser, Browser]:
    """Alice and Bob, joined in a new room; Alice has seen Bob arrive."""
    room = await app.create_room()
    alice = await joined(app, room, role=alice_role, nickname="alice")
    browsers.append(alice)
    bob = await joined(app, room, role=bob_role, nickname="bob")
    browsers.append(bob)
    await alice.wait_for("newPeer")
    return alice, bob


async def test_ping_and_dump_stats(app: KolabApp, browsers: list[Browser]) -> None:
    room = await app.create_room()
    browser = await new_browser(app, room, browsers)
    assert await browser.request("ping") is None
    assert await browser.request("dumpStats") is None
    assert await browser.request("ping", {"ignored": True}) is None


async def test_ack_arguments(app: KolabApp, browsers: list[Browser]) -> None:
    """Success: no arguments for null, else (null, response); failure: (500, message)."""
    room = await app.create_room()
    browser = await new_browser(app, room, browsers)
    assert await ack_arguments(browser, {"method": "ping"}) == ()
    assert await ack_arguments(browser, {"method": "chatMessage", "data": {"message": "m"}}) == ()
    [error, caps] = await ack_arguments(browser, {"method": "getRouterRtpCapabilities"})
    assert error is None and caps["codecs"]
    assert await ack_arguments(browser, {"method": "nope"}) == (500, 'unknown request.method "nope"')
    [code, message] = await ack_arguments(browser, {"method": "raisedHand", "data": {"raisedHand": 1}})
    assert code == 500 and message.startswith("request raisedHand failed")


async def test_get_router_rtp_capabilities(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    room = await app.create_room()
    browser = await new_browser(app, room, browsers)
    caps = await browser.ok("getRouterRtpCapabilities")
    assert caps == server.rooms.get(room).router.rtp_capabilities
    assert set(caps) == {"codecs", "headerExtensions"}
    assert [(c["mimeType"], c["preferredPayloadType"]) for c in caps["codecs"]] == [
        ("audio/opus", 100), ("video/VP8", 101), ("video/rtx", 102), ("video/VP9", 103), ("video/rtx", 104),
        ("video/H264", 105), ("video/rtx", 106), ("video/H264", 107), ("video/rtx", 108)]
    assert len(caps["headerExtensions"]) == 17


async def test_join(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    room = await app.create_room()
    alice = await new_browser(app, room, browsers, role=3)
    response = await alice.ok("join", {"nickname": "alice", "rtpCapabilities": CAPS})
    assert response == {"peers": [], "id": alice.peer_id, "nickname": "alice", "role": 3,
                        "raisedHand": False, "language": None}
    assert await alice.wait_for("changeNickname") == {"peerId": alice.peer_id, "nickname": "alice"}

    bob = await new_browser(app, room, browsers, role=1)
    response = await bob.ok("join", {"nickname": "bob", "rtpCapabilities": CAPS})
    alice_info = {"id": alice.peer_id, "nickname": "alice", "role": 3, "raisedHand": False, "language": None}
    bob_info = {"id": bob.peer_id, "nickname": "bob", "role": 1, "raisedHand": False, "language": None}
    assert response == {"peers": [alice_info], **bob_info}
    assert await alice.wait_for("newPeer") == bob_info
    bob_nick = {"peerId": bob.peer_id, "nickname": "bob"}
    assert await alice.wait_for("changeNickname", lambda d: d["peerId"] == bob.peer_id) == bob_nick
    assert await bob.wait_for("changeNickname") == bob_nick
    assert server_peer(server, bob).rtp_capabilities is not None

    # A second join is refused and tells nobody anything.
    message = await bob.fails("join", {"nickname": "bobby", "rtpCapabilities": CAPS})
    assert "already joined" in message
    await sync(bob, alice)
    assert alice.seen("newPeer") == [bob_info]
    assert bob.seen("newPeer") == []
    assert bob.seen("changeNickname") == [bob_nick]
    assert server_peer(server, bob).nickname == "bob"


async def test_join_without_nickname_still_announces_it(app: KolabApp, browsers: list[Browser]) -> None:
    room = await app.create_room()
    alice = await new_browser(app, room, browsers)
    response = await alice.ok("join", {"rtpCapabilities": CAPS})
    assert response["nickname"] is None
    assert await alice.wait_for("changeNickname") == {"peerId": alice.peer_id, "nickname": None}


@pytest.mark.parametrize("data", [
    pytest.param({"nickname": 5, "rtpCapabilities": CAPS}, id="nickname-not-string"),
    pytest.param({"nickname": "x" * 10000, "rtpCapabilities": CAPS}, id="nickname-too-long"),
    pytest.param({"nickname": "a", "rtpCapabilities": "caps"}, id="caps-not-object"),
    pytest.param({"nickname": "a", "rtpCapabilities": {"codecs": "x"}}, id="caps-codecs-not-list"),
])
async def test_join_bad_data(app: KolabApp, server: Server, browsers: list[Browser], data: dict[str, Any]) -> None:
    room = await app.create_room()
    alice = await joined(app, room, nickname="alice")
    browsers.append(alice)
    bob = await new_browser(app, room, browsers)
    message = await bob.fails("join", data)
    assert message.startswith("request join failed: ")
    assert not server_peer(server, bob).joined
    # Nothing was half done: the peer can still join, and is announced once.
    await bob.ok("join", {"nickname": "bob", "rtpCapabilities": CAPS})
    await sync(bob, alice)
    assert [d["id"] for d in alice.seen("newPeer")] == [bob.peer_id]


async def test_change_nickname(app: KolabApp, browsers: list[Browser]) -> None:
    alice, bob = await pair(app, browsers)
    assert await bob.ok("changeNickname", {"nickname": "bob"}) is None  # unchanged
    assert await bob.ok("changeNickname", {"nickname": "robert"}) is None
    await sync(bob, alice)
    expected = [{"peerId": bob.peer_id, "nickname": "bob"}, {"peerId": bob.peer_id, "nickname": "robert"}]
    assert alice.seen("changeNickname", lambda d: d["peerId"] == bob.peer_id) == expected
    assert bob.seen("changeNickname") == expected
    assert (await bob.fails("changeNickname", {"nickname": 7})).startswith("request changeNickname failed")
    assert (await bob.fails("changeNickname", {"nickname": ["x"]})).startswith("request changeNickname failed")
    await sync(bob, alice)
    assert bob.seen("changeNickname") == expected


async def test_chat_message(app: KolabApp, browsers: list[Browser]) -> None:
    alice, bob = await pair(app, browsers)
    assert await bob.ok("chatMessage", {"message": "hello"}) is None
    expected = {"peerId": bob.peer_id, "nickname": "bob", "message": "hello"}
    assert await alice.wait_for("chatMessage") == expected
    assert await bob.wait_for("chatMessage") == expected
    assert "message" in await bob.fails("chatMessage", {"message": 5})
    assert "message" in await bob.fails("chatMessage", {})
    await sync(alice, bob)
    assert len(bob.seen("chatMessage")) == 2  # hello and the sync marker


async def test_raised_hand(app: KolabApp, browsers: list[Browser]) -> None:
    alice, bob = await pair(app, browsers, bob_role=1)
    assert await bob.ok("raisedHand", {"raisedHand": True}) is None
    assert await bob.ok("raisedHand", {"raisedHand": True}) is None  # unchanged
    assert await bob.ok("raisedHand", {"raisedHand": False}) is None
    for wrong in ({"raisedHand": "yes"}, {"raisedHand": 1}, {"raisedHand": None}, {}):
        assert "raisedHand" in await bob.fails("raisedHand", wrong)
    await sync(bob, alice)
    expected = [{"peerId": bob.peer_id, "raisedHand": True}, {"peerId": bob.peer_id, "raisedHand": False}]
    assert alice.seen("changeRaisedHand") == expected
    assert bob.seen("changeRaisedHand") == expected


async def test_unknown_method(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    alice, bob = await pair(app, browsers)
    assert await bob.request("x") == (500, 'unknown request.method "x"')
    assert await bob.request("moderator:nothing", {}) == (500, 'unknown request.method "moderator:nothing"')
    await assert_unharmed(app, server, alice, bob)


@pytest.mark.parametrize("payload", [
    pytest.param(None, id="no-payload"),
    pytest.param("ping", id="payload-string"),
    pytest.param(["ping"], id="payload-list"),
    pytest.param(42, id="payload-number"),
    pytest.param({}, id="no-method"),
    pytest.param({"data": {}}, id="data-without-method"),
    pytest.param({"method": 5}, id="method-number"),
    pytest.param({"method": None}, id="method-null"),
    pytest.param({"method": ["ping"]}, id="method-list"),
    pytest.param({"method": "chatMessage", "data": "hi"}, id="data-string"),
    pytest.param({"method": "chatMessage", "data": ["hi"]}, id="data-list"),
    pytest.param({"method": "raisedHand", "data": 1}, id="data-number"),
])
async def test_malformed_payloads(app: KolabApp, server: Server, browsers: list[Browser], payload: Any) -> None:
    alice, bob = await pair(app, browsers)
    if payload is None:
        ack = await bob.sio.call("request", timeout=5)
    else:
        ack = await bob.sio.call("request", payload, timeout=5)
    assert isinstance(ack, tuple) and ack[0] == 500 and isinstance(ack[1], str) and ack[1], ack
    await assert_unharmed(app, server, alice, bob)


async def assert_unharmed(app: KolabApp, server: Server, alice: Browser, bob: Browser) -> None:
    """After a failed request of Bob's: his socket is open, he and the room still work."""
    assert bob.sio.connected and not bob.disconnected.is_set()
    assert await bob.ok("ping") is None
    await sync(bob, alice)
    assert alice.seen("peerClosed") == []
    assert server_peer(server, bob) is not None
    assert await room_status(app, bob.room_id) == 200


async def test_create_webrtc_transport(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    alice, bob = await pair(app, browsers)
    transport = await bob.ok("createWebRtcTransport", {"forceTcp": False, "producing": False, "consuming": True})
    assert set(transport) == {"id", "iceParameters", "iceCandidates", "dtlsParameters"}
    assert transport["iceParameters"]["iceLite"] is True
    protocols = [c["protocol"] for c in sorted(transport["iceCandidates"], key=lambda c: -c["priority"])]
    assert protocols == ["udp", "tcp"]
    assert transport["dtlsParameters"]["role"] == "auto"
    assert transport["id"] in server_peer(server, bob).transports

    tcp_only = await bob.ok("createWebRtcTransport", {"forceTcp": True, "producing": True, "consuming": False})
    assert [c["protocol"] for c in tcp_only["iceCandidates"]] == ["tcp"]
    assert tcp_only["iceCandidates"][0]["tcpType"] == "passive"

    restarted = await bob.ok("restartIce", {"transportId": transport["id"]})
    assert restarted["usernameFragment"] != transport["iceParameters"]["usernameFragment"]
    assert restarted["password"] != transport["iceParameters"]["password"]
    await assert_unharmed(app, server, alice, bob)


@pytest.mark.parametrize("data", [
    {"forceTcp": "no"}, {"forceTcp": 0}, {"producing": "yes"}, {"consuming": 1},
])
async def test_create_webrtc_transport_wrong_types(app: KolabApp, server: Server, browsers: list[Browser],
                                                   data: dict[str, Any]) -> None:
    alice, bob = await pair(app, browsers)
    [key] = data
    assert key in await bob.fails("createWebRtcTransport", data)
    assert server_peer(server, bob).transports == {}
    await assert_unharmed(app, server, alice, bob)


@pytest.mark.parametrize("method", ["connectWebRtcTransport", "restartIce"])
async def test_webrtc_requests_with_unknown_or_wrong_transport(app: KolabApp, server: Server,
                                                               browsers: list[Browser], method: str) -> None:
    alice, bob = await pair(app, browsers)
    dtls = {"role": "client", "fingerprints": [{"algorithm": "sha-256", "value": "AB:CD"}]}
    unknown = str(uuid.uuid4())
    assert unknown in await bob.fails(method, {"transportId": unknown, "dtlsParameters": dtls})
    assert "transportId" in await bob.fails(method, {"transportId": 5, "dtlsParameters": dtls})
    plain = await bob.ok("createPlainTransport", {"producing": False, "consuming": True})
    assert "not a WebRTC transport" in await bob.fails(method, {"transportId": plain["id"], "dtlsParameters": dtls})
    await assert_unharmed(app, server, alice, bob)


async def test_connect_webrtc_transport_bad_dtls_parameters(app: KolabApp, server: Server,
                                                            browsers: list[Browser]) -> None:
    alice, bob = await pair(app, browsers)
    transport = await bob.ok("createWebRtcTransport", {"forceTcp": False, "producing": True, "consuming": False})
    assert "dtlsParameters" in await bob.fails("connectWebRtcTransport", {"transportId": transport["id"]})
    assert "dtlsParameters" in await bob.fails("connectWebRtcTransport", {"transportId": transport["id"],
                                                                          "dtlsParameters": "x"})
    await assert_unharmed(app, server, alice, bob)


async def test_produce_needs_publisher(app: KolabApp, server: Server, browsers: list[Browser]) -> None:
    alice, bob = await pair(app, browsers, bob_role=1 | 8)  # SCREEN alone is no PUBLISHER
    transport = await bob.ok("createPlainTransport", {"producing": True, "consuming": False})
    message = await bob.fails("produce", {"transportId": transport["id"], "kind": "audio",
                                          "rtpParameters": {}, "appData": {"source": "mic"}})
    assert "PUBLISHER" in message
    assert server_peer(server, bob).producers == {}
    await assert_unharmed(app, server, alice, bob)


@pytest.mark.parametrize("app_data", [None, {}, {"source": "camera"}, {"source": 1}, "mic"])
async def test_produce_bad_source(app: KolabApp, server: Server, browsers: list[Browser], app_data: Any) -> None:
    alice, bob = await pair(app, browsers)
    transport = await bob.ok("createPlainTransport", {"producing": True, "consuming": False})
    data: dict[str, Any] = {"transportId": transport["id"], "kind": "audio", "rtpParameters": {}}
    if app_data is not None:
        data["appData"] = app_data
    message = await bob.fails("produce", data)
    assert "appData.source" in message
    assert server_peer(server, bob).producers == {}
    await assert_unharmed(app, server, alice, bob)


@pytest.mark.parametrize("change", [
    {"kind": "data"}, {"kind": 5}, {"kind": None}, {"rtpParameters": "x"}, {"rtpParameters": None},
    {"rtpParameters": {"codecs": "x"}}, {"transportId": None},
])
async def test_produce_malformed(app: KolabApp, server: Server, browsers: list[Browser],
                                 change: dict[str, Any]) -> None:
    alice, bob = await pair(app, browsers)
    transport = await bob.ok("createPlainTransport", {"producing": True, "consuming": False})
    data = {"transportId": transport["id"], "kind": "audio", "rtpParameters": CHROME_MIC_PRODUCER,
            "appData": {"source": "mic"}, **change}
    assert (await bob.fails("produce", data)).startswith("request produce failed")
    assert server_peer(server, bob).producers == {}
    # The same transport still produces with good parameters.
    data.update(transportId=transport["id"], kind="audio", rtpParameters=CHROME_MIC_PRODUCER)
    assert set(await bob.ok("produce", data)) == {"id"}
    await assert_unharmed(app, server, alice, bob)


async def test_produce_unknown_transport(app: KolabApp, browsers: list[Browser]) -> None:
    alice, bob = await pair(app, browsers)
    message = await bob.fails("produce", {"transportId": str(uuid.uuid4()), "kind": "audio",
                                          "rtpParameters": {}, "appData": {"source": "mic"}})
    assert "not found" in message


@pytest.mark.parametrize("method,key", [
    ("closeProducer", "producerId"), ("pauseProducer", "producerId"), ("resumeProducer", "producerId"),
    ("pauseConsumer", "consumerId"), ("resumeConsumer", "consumerId"),
    ("connectPlainTransport", "transportId"),
])
async def test_unknown_ids(app: KolabApp, server: Server, browsers: list[Browser], method: str, key: str) -> None:
    alice, bob = await pair(app, browsers)
    extra = {"ip": "127.0.0.1", "port": 5004, "rtcpPort": 5005} if method == "connectPlainTransport" else {}
    unknown = str(uuid.uuid4())
    assert unknown in await bob.fails(method, {key: unknown, **extra})
    assert key in await bob.fails(method, {key: 5, **extra})
    assert key in await bob.fails(method, {**extra})
    await assert_unharmed(app, server, alice, bob)


async def test_ids_of_another_peer_are_unknown(app: KolabApp, browsers: list[Browser]) -> None:
    """A transport is its peer's own: another peer naming it gets 'not found'."""
    alice, bob = await pair(app, browsers)
    transport = await alice.ok("createPlainTransport", {"producing": True, "consuming": False})
    message = await bob.fails("connectPlainTransport", {"transportId": transport["id"], "ip": "127.0.0.1",
                                                        "port": 5004, "rtcpPort": 5005})
    assert "not found" in message


async def test_create_plain_transport(app: KolabApp, browsers: list[Browser]) -> None:
    alice, bob = await pair(app, browsers)
    transport = await bob.ok("createPlainTransport", {"producing": True, "consuming": False})
    assert set(transport) == {"id", "ip", "port", "rtcpPort"}
    assert transport["ip"] == "127.0.0.1"
    assert isinstance(transport["port"], int) and isinstance(transport["rtcpPort"], int)
    assert transport["port"] != transport["rtcpPort"]
    assert "producing" in await bob.fails("createPlainTransport", {"producing": "yes"})
    consuming = await bob.ok("createPlainTransport", {"producing": False, "consuming": True})
    assert await bob.ok("connectPlainTransport", {"transportId": consuming["id"], "ip": "127.0.0.1",
                                                  "port": 5004, "rtcpPort": 5005}) is None
    for wrong in ({"ip": 1, "port": 5004}, {"ip": "127.0.0.1", "port": "5004"}, {"ip": "127.0.0.1"},
                  {"ip": "127.0.0.1", "port": 5004, "rtcpPort": "5005"}):
        message = await bob.fails("connectPlainTransport", {"transportId": consuming["id"], **wrong})
        assert message.startswith("request connectPlainTransport failed: ")


async def test_transports_per_peer_are_limited(app: KolabApp, browsers: list[Browser]) -> None:
    room = await app.create_room()
    alice = await joined(app, room)
    browsers.append(alice)
    for _ in range(MAX_TRANSPORTS):
        await alice.ok("createWebRtcTransport", {"forceTcp": False, "producing": False, "consuming": True})
    message = await alice.fails("createPlainTransport", {"producing": True, "consuming": False})
    assert f"at most {MAX_TRANSPORTS} transports" in message
    assert await alice.ok("ping") is None
