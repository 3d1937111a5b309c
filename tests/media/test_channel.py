"""The worker channel: framing, errors, and a worker served inside the test's loop."""

from __future__ import annotations

import asyncio
import socket

import msgspec
import pytest

from kolabmeet.media.capabilities import router_rtp_capabilities
from kolabmeet.media.channel import MAX_WAITING, Channel, ChannelClosedError
from kolabmeet.media.errors import InvalidStateError, MediaError
from kolabmeet.media.worker_proxy import Worker


async def test_frames_round_trip_over_a_socket_pair() -> None:
    left, right = socket.socketpair()
    a, b = await Channel.from_socket(left), await Channel.from_socket(right)
    a.send({"id": 1, "method": "x", "data": {"blob": b"\x00\x01", "n": [1, 2]}})
    a.send({"targetId": "t", "event": "e", "data": None})
    assert await b.receive() == {"id": 1, "method": "x", "data": {"blob": b"\x00\x01", "n": [1, 2]}}
    assert await b.receive() == {"targetId": "t", "event": "e", "data": None}
    a.close()
    with pytest.raises(ChannelClosedError):
        await b.receive()
    b.close()


async def test_oversized_or_garbage_frame_closes_the_channel() -> None:
    left, right = socket.socketpair()
    channel = await Channel.from_socket(right)
    left.sendall(b"\xff\xff\xff\xff")
    with pytest.raises(ChannelClosedError, match="exceeds"):
        await channel.receive()
    left.close()
    channel.close()


async def test_in_process_worker_answers_and_refuses() -> None:
    worker = await Worker.in_process()
    router = await worker.create_router(router_rtp_capabilities())
    assert (await router.dump())["id"] == router.id
    usage = await worker.get_resource_usage()
    assert usage["ru_utime"] > 0 and usage["ru_maxrss"] > 0
    with pytest.raises(InvalidStateError, match="not found"):
        await worker.request("transport.dump", "no-such-transport")
    with pytest.raises(MediaError, match="unknown method"):
        await worker.request("router.explode", router.id)
    transport = await router.create_plain_transport("127.0.0.1", None, (40000, 49999), comedia=True)
    assert transport.tuple["localPort"] and transport.rtcp_tuple["localPort"]
    await router.close()
    assert transport.closed
    await worker.close()
    assert worker.closed and not worker.died
    await asyncio.sleep(0)


async def test_a_failing_notification_handler_does_not_cut_the_worker_off(caplog: pytest.LogCaptureFixture) -> None:
    worker = await Worker.in_process()
    router = await worker.create_router(router_rtp_capabilities())

    def broken(event: str, data: object) -> None:
        raise RuntimeError("handler bug")

    worker.subscribe(router.id, broken)
    worker._on_message({"targetId": router.id, "event": "activespeaker", "data": {}})
    assert "handler bug" in caplog.text
    assert not worker.closed
    assert (await router.dump())["id"] == router.id
    await worker.close()


async def test_a_listener_gets_every_message_in_order_across_any_split_then_the_close() -> None:
    left, right = socket.socketpair()
    channel = await Channel.from_socket(right)
    sender = await Channel.from_socket(left)
    sender.send({"id": 0, "early": True})
    await asyncio.sleep(0.05)
    got: list[dict] = []
    closed: list[ChannelClosedError] = []
    channel.listen(got.append, closed.append)
    assert got == [{"id": 0, "early": True}]
    frames = b""
    for n in range(1, 4):
        body = msgspec.msgpack.encode({"id": n, "data": "x" * 300 * n})
        frames += len(body).to_bytes(4, "big") + body
    for start in range(0, len(frames), 5):
        channel.data_received(frames[start:start + 5])
    assert [message["id"] for message in got] == [0, 1, 2, 3] and got[3]["data"] == "x" * 900
    sender.close()
    for _ in range(50):
        if closed:
            break
        await asyncio.sleep(0.01)
    assert len(closed) == 1 and str(closed[0]) == "channel closed"
    with pytest.raises(ChannelClosedError):
        channel.send({"id": 4})


async def test_a_listener_is_told_why_a_bad_frame_ended_the_channel() -> None:
    left, right = socket.socketpair()
    channel = await Channel.from_socket(right)
    closed: list[ChannelClosedError] = []
    channel.listen(lambda message: None, closed.append)
    body = msgspec.msgpack.encode([1, 2])
    channel.data_received(len(body).to_bytes(4, "big") + body)
    assert [str(error) for error in closed] == ["frame is not a map"]
    await asyncio.sleep(0.01)
    assert len(closed) == 1
    left.close()


async def test_a_channel_nobody_reads_stops_reading_the_socket_then_delivers_everything() -> None:
    left, right = socket.socketpair()
    channel = await Channel.from_socket(right)
    sender = await Channel.from_socket(left)
    count = MAX_WAITING * 3
    for n in range(count):
        sender.send({"id": n, "data": "x" * 1000})
    await asyncio.sleep(0.1)
    assert MAX_WAITING <= len(channel._messages) < count  # the rest waits in the socket
    assert [(await channel.receive())["id"] for _ in range(count)] == list(range(count))
    sender.close()
    channel.close()
