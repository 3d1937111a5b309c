"""Prometheus metrics, scraped from a server carrying a real plain-RTP call."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kolabmeet.app import Server
from tests.conftest import running_server
from tests.helpers import TOKEN, Browser, KolabApp, free_port
from tests.media.test_plain_forwarding import Call, streaming_call
from tests.media.test_webrtc_call import start_call


@pytest.fixture
async def metrics_server() -> AsyncIterator[Server]:
    async with running_server(metrics_listen=("127.0.0.1", 0)) as server:
        yield server


@pytest.fixture
async def streaming(metrics_server: Server, browsers: list[Browser]) -> AsyncIterator[Call]:
    async with streaming_call(metrics_server, browsers) as call:
        yield call


async def _scrape(server: Server, headers: dict[str, str] | None = None,
                  port: int | None = None) -> tuple[int, str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """(status, content type, {(sample name, labels): value})."""
    url = f"http://127.0.0.1:{port or server.port}/metrics"
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers or {}) as response:
        text = await response.text()
        samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        if response.status == 200:
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return response.status, response.headers.get("Content-Type", ""), samples


def _value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def test_metrics_behind_the_token_or_on_their_own_listener(metrics_server: Server) -> None:
    assert (await _scrape(metrics_server))[0] == 403
    status, content_type, samples = await _scrape(metrics_server, {"X-Auth-Token": TOKEN})
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    assert _value(samples, "kolabmeet_rooms") == 0
    assert (await _scrape(metrics_server, {"Authorization": f"Bearer {TOKEN}"}))[0] == 200
    assert (await _scrape(metrics_server, {"Authorization": "Bearer wrong-token-wrong-token"}))[0] == 403
    status, _type, samples = await _scrape(metrics_server, port=metrics_server.metrics_port)
    assert status == 200 and _value(samples, "kolabmeet_worker_up", worker="0") == 1
    assert _value(samples, "kolabmeet_control_process_cpu_seconds_total") > 0


async def test_a_call_shows_in_the_metrics(metrics_server: Server, streaming: Call) -> None:
    port = metrics_server.metrics_port
    _status, _type, first = await _scrape(metrics_server, port=port)
    assert _value(first, "kolabmeet_rooms") == 1
    assert _value(first, "kolabmeet_peers", state="joined") == 3
    assert _value(first, "kolabmeet_producers", kind="video", type="simple") == 1
    assert _value(first, "kolabmeet_consumers", kind="audio", type="simple") == 2
    assert _value(first, "kolabmeet_transports", **{"class": "PlainTransport", "ice_state": "none",
                                                     "dtls_state": "none"}) == 3
    assert _value(first, "kolabmeet_consumers_by_score", worker="0", score="10") == 4
    assert _value(first, "kolabmeet_video_consumers_by_spatial_layer", worker="0", layer="0") == 2
    assert _value(first, "kolabmeet_join_duration_seconds_count") == 3
    assert _value(first, "kolabmeet_worker_cpu_seconds_total", worker="0", mode="user") > 0
    assert _value(first, "kolabmeet_worker_max_resident_memory_bytes", worker="0") > 10_000_000
    assert 0 <= _value(first, "kolabmeet_worker_event_loop_lag_seconds", worker="0") < 1
    received = _value(first, "kolabmeet_received_packets_total", worker="0")
    forwarded = _value(first, "kolabmeet_forwarded_packets_total", worker="0")
    assert received > 50 and forwarded >= 1.5 * received, (received, forwarded)
    await asyncio.sleep(1.0)
    _status, _type, second = await _scrape(metrics_server, port=port)
    assert _value(second, "kolabmeet_forwarded_packets_total", worker="0") > forwarded
    assert _value(second, "kolabmeet_forwarded_bytes_total", worker="0") > _value(
        first, "kolabmeet_forwarded_bytes_total", worker="0")


async def test_totals_keep_what_closed_objects_counted(metrics_server: Server, streaming: Call) -> None:
    port = metrics_server.metrics_port
    before = _value((await _scrape(metrics_server, port=port))[2], "kolabmeet_forwarded_packets_total", worker="0")
    room = metrics_server.rooms.get(streaming.publisher.room_id)
    viewer = room.peers[streaming.subscribers[0].browser.peer_id]
    await room.close_peer(viewer)
    _status, _type, after = await _scrape(metrics_server, port=port)
    assert _value(after, "kolabmeet_consumers", kind="video", type="simple") == 1
    assert _value(after, "kolabmeet_forwarded_packets_total", worker="0") >= before


async def test_webhook_failures_are_counted() -> None:
    async with running_server(webhook_url=f"http://127.0.0.1:{free_port()}/hook", room_empty_timeout=0.2) as server, \
            aiohttp.ClientSession() as http:
        app = KolabApp(server, http)
        room = await app.create_room()
        await server.rooms.get(room).close()
        for _ in range(50):
            if server.webhooks.failures:
                break
            await asyncio.sleep(0.1)
        _status, _type, samples = await _scrape(server, {"X-Auth-Token": TOKEN})
        assert _value(samples, "kolabmeet_webhook_failures_total") == 1


async def test_a_webrtc_call_shows_its_transport_states_and_forwarding(metrics_server: Server) -> None:
    """pymediasoup (aiortc) peers over ICE, DTLS and SRTP: transports counted by state, VP8 forwarded."""
    async with aiohttp.ClientSession() as http:
        call = await start_call(KolabApp(metrics_server, http))
        try:
            await asyncio.sleep(2.0)
            _status, _type, samples = await _scrape(metrics_server, port=metrics_server.metrics_port)
            connected = sum(value for (name, labels), value in samples.items() if name == "kolabmeet_transports"
                            and dict(labels)["class"] == "WebRtcTransport" and dict(labels)["dtls_state"] == "connected"
                            and dict(labels)["ice_state"] in ("connected", "completed"))
            assert connected == 3, "the publisher's send transport and the subscribers' receive transports"
            idle = _value(samples, "kolabmeet_transports", **{"class": "WebRtcTransport", "ice_state": "new",
                                                               "dtls_state": "new"})
            assert idle == 1, "the publisher's receive transport: nothing to consume, never connected"
            assert _value(samples, "kolabmeet_consumers", kind="video", type="simple") == 2
            forwarded = _value(samples, "kolabmeet_forwarded_bytes_total", worker="0")
            sent = 0
            for peer in metrics_server.rooms.get(call.publisher.browser.room_id).peers.values():
                for consumer in peer.consumers.values():
                    sent += (await consumer.get_stats())[0]["byteCount"]
            assert _value(samples, "kolabmeet_forwarded_packets_total", worker="0") > 100
            assert 0.8 * sent <= forwarded <= sent, "what the consumers' getStats say they sent, a moment later"
        finally:
            await call.close()
