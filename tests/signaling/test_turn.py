"""TURN credentials (coturn REST API, static-auth-secret) and the iceServers of roomReady."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import aiohttp

from kolabmeet.signaling.turn import ice_servers, turn_credentials
from tests.helpers import Browser, KolabApp

SECRET = "s3cret-static-auth"
PEER = "4f1c2a9e-1111-4222-8333-444455556666"
TURN = "turn:127.0.0.1:3478?transport=tcp"


def coturn_credential(secret: str, username: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()


def test_credentials_known_vector() -> None:
    # echo -n "1700086400:<peer>" | openssl dgst -sha1 -hmac "s3cret-static-auth" -binary | base64
    assert turn_credentials(SECRET, PEER, now=1700000000) == {
        "username": f"1700086400:{PEER}",
        "credential": "LU0+ss7U9hBRcI0en++t0bL5xSU=",
    }


def test_credentials_expire_a_day_from_now() -> None:
    before = int(time.time())
    creds = turn_credentials(SECRET, PEER)
    after = int(time.time())
    expiry, peer_id = creds["username"].split(":", 1)
    assert peer_id == PEER
    assert before + 86400 <= int(expiry) <= after + 86400
    assert creds["credential"] == coturn_credential(SECRET, creds["username"])


def test_fractional_now_is_truncated() -> None:
    assert turn_credentials(SECRET, PEER, now=1700000000.9)["username"] == f"1700086400:{PEER}"


def test_ice_servers_shape() -> None:
    servers = ice_servers(TURN, SECRET, PEER)
    assert isinstance(servers, list) and len(servers) == 1
    assert set(servers[0]) == {"urls", "username", "credential"}
    assert servers[0]["urls"] == [TURN]
    assert servers[0]["credential"] == coturn_credential(SECRET, servers[0]["username"])


def test_ice_servers_off() -> None:
    assert ice_servers(None, None, PEER) is None
    assert ice_servers(None, SECRET, PEER) is None


async def ready_data(app: KolabApp, room_id: str, browsers: list[Browser]) -> tuple[Browser, Any]:
    browser = Browser((await app.connection(room_id, role=3))["token"])
    browsers.append(browser)
    await browser.connect(wait_ready=False)
    return browser, await browser.wait_for("roomReady")


async def test_room_ready_carries_turn_credentials(server_with: Any, http: aiohttp.ClientSession,
                                                   browsers: list[Browser]) -> None:
    async with server_with(turn_server=TURN, turn_static_secret=SECRET) as srv:
        app = KolabApp(srv, http)
        room_id = await app.create_room()
        before = int(time.time())
        alice, alice_ready = await ready_data(app, room_id, browsers)
        bob, bob_ready = await ready_data(app, room_id, browsers)
        after = int(time.time())
        for browser, ready in ((alice, alice_ready), (bob, bob_ready)):
            assert set(ready) == {"iceServers", "roomId"} and ready["roomId"] == room_id
            [server] = ready["iceServers"]
            assert set(server) == {"urls", "username", "credential"}
            assert server["urls"] == [TURN]
            expiry, peer_id = server["username"].split(":", 1)
            assert peer_id == browser.peer_id
            assert before + 86400 <= int(expiry) <= after + 86400
            assert server["credential"] == coturn_credential(SECRET, server["username"])
        assert alice_ready["iceServers"][0]["credential"] != bob_ready["iceServers"][0]["credential"]
        for browser in browsers:
            await browser.close()


async def test_room_ready_without_turn_has_null_ice_servers(app: KolabApp, browsers: list[Browser]) -> None:
    assert app.server.config.turn_server is None
    room_id = await app.create_room()
    _, ready = await ready_data(app, room_id, browsers)
    assert ready == {"iceServers": None, "roomId": room_id}
