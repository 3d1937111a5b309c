"""The floor server of `bench.join --floor` answers a join as kolabmeet does, in shape."""

from __future__ import annotations

from types import SimpleNamespace

import aiohttp
from aiohttp import web

from bench.canned_server import CannedServer
from bench.join import join_one
from bench.signaling_peer import SignalingPeer
from kolabmeet.media.capabilities import router_rtp_capabilities
from tests.helpers import KolabApp, free_port


async def test_a_join_is_answered_with_the_real_shapes() -> None:
    port = free_port()
    runner = web.AppRunner(CannedServer(port).app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as http:
            app = KolabApp(SimpleNamespace(port=port), http)  # type: ignore[arg-type]
            room = await app.create_room()
            first, latency = await join_one(app, room)
            assert latency > 0
            peer = SignalingPeer((await app.connection(room, 3))["token"])
            await peer.connect()
            capabilities = await peer.ok("getRouterRtpCapabilities")
            assert capabilities == router_rtp_capabilities()
            transport = await peer.ok("createWebRtcTransport", {"producing": True, "consuming": False})
            assert {"id", "iceParameters", "iceCandidates", "dtlsParameters"} <= transport.keys()
            assert transport["dtlsParameters"]["fingerprints"][0]["algorithm"] == "sha-256"
            answer = await peer.ok("join", {"nickname": "second", "rtpCapabilities": capabilities})
            assert [other["id"] for other in answer["peers"]] == [first.peer_id]
            assert answer["id"] == peer.peer_id and answer["nickname"] == "second"
            assert await peer.ok("ping") is None
            await first.close()
            await peer.close()
    finally:
        await runner.cleanup()
