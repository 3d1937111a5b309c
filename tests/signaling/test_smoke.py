from tests.helpers import Browser, KolabApp, joined


async def test_two_peers_meet(app: KolabApp, browsers: list[Browser]) -> None:
    room = await app.create_room()
    alice = await joined(app, room, nickname="alice")
    browsers.append(alice)
    bob = await joined(app, room, nickname="bob")
    browsers.append(bob)
    new_peer = await alice.wait_for("newPeer")
    assert new_peer["nickname"] == "bob"
    caps = await bob.ok("getRouterRtpCapabilities")
    assert caps["codecs"][0]["mimeType"] == "audio/opus"
