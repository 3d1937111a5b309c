"""The console: a Unix socket into a running server, driven by the `kolabmeet console` command and its client."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest

from kolabmeet.app import Server
from kolabmeet.ops.console_client import ConsoleClient, run_line, watch
from kolabmeet.ops.console_server import ConsoleSocketError
from tests.conftest import running_server
from tests.helpers import TOKEN, Browser
from tests.media.test_plain_forwarding import Call, streaming_call


@pytest.fixture
async def console_server(tmp_path: Path) -> AsyncIterator[tuple[Server, str]]:
    path = str(tmp_path / "run" / "console.sock")
    async with running_server(console_socket=path) as server:
        yield server, path


@pytest.fixture
async def media_call(console_server: tuple[Server, str], browsers: list[Browser]) -> AsyncIterator[Call]:
    """A plain-RTP publisher streaming VP8 and Opus to two subscribers, for real numbers."""
    async with streaming_call(console_server[0], browsers) as call:
        yield call


async def _ask(path: str, command: str, *args: str) -> Any:
    """One request through the client (a blocking socket: in a thread, as the server runs in this loop)."""
    def ask() -> Any:
        client = ConsoleClient(path)
        try:
            return client.request(command, *args)
        finally:
            client.close()
    return await asyncio.to_thread(ask)


async def _cli(path: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "kolabmeet", "console", "--socket", path, *args]
    return await asyncio.to_thread(subprocess.run, command, input=stdin, capture_output=True, text=True, timeout=30)


async def test_the_socket_is_for_the_servers_user_only(console_server: tuple[Server, str]) -> None:
    _server, path = console_server
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    with pytest.raises(ConsoleSocketError, match="another server is using it"):
        async with running_server(console_socket=path):
            pass


async def test_a_folder_others_can_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(ConsoleSocketError, match="writable by no one else"):
        async with running_server(console_socket=str(shared / "console.sock")):
            pass


async def test_a_stale_socket_is_replaced_and_removed_at_stop(tmp_path: Path) -> None:
    path = str(tmp_path / "console.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()
    async with running_server(console_socket=path):
        assert await _ask(path, "rooms") == []
    assert not os.path.exists(path)


async def test_lists_dumps_and_stats_agree_with_get_stats(console_server: tuple[Server, str],
                                                          media_call: Call) -> None:
    server, path = console_server
    (room,) = await _ask(path, "rooms")
    assert room["peers"] == 3 and room["joined"] == 3
    peers = await _ask(path, "peers", room["room"])
    assert sorted(p["nickname"] for p in peers) == ["speaker", "viewer", "viewer"]
    producers = await _ask(path, "producers", media_call.publisher.peer_id)
    assert sorted(p["kind"] for p in producers) == ["audio", "video"]
    consumers = await _ask(path, "consumers")
    assert len(consumers) == 4 and {c["producer"] for c in consumers} == {p["producer"] for p in producers}
    video = next(c for c in consumers if c["kind"] == "video")
    dump = await _ask(path, "dump", video["consumer"])
    assert dump["id"] == video["consumer"] and dump["producerId"] == video["producer"]
    (outbound, *_inbound) = await _ask(path, "stats", video["consumer"])
    assert outbound["type"] == "outbound-rtp" and outbound["packetCount"] > 0
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{server.port}/meetmedia/api/stats",
                            headers={"X-Auth-Token": TOKEN}) as response:
            over_http = await response.json()
    dumped = json.loads((await _cli(path, "--stats", "--json")).stdout)
    assert dumped.keys() == over_http.keys() == {room["room"]}
    assert dumped[room["room"]].keys() == over_http[room["room"]].keys() == {p["peer"] for p in peers}
    text = (await _cli(path, "--stats")).stdout
    assert f"room {room['room']}: 3 peer(s)" in text and "outbound-rtp" in text and "score 10" in text


async def test_watch_follows_a_stream_live(console_server: tuple[Server, str], media_call: Call) -> None:
    _server, path = console_server
    video = next(c for c in await _ask(path, "consumers") if c["kind"] == "video")
    out = io.StringIO()

    def follow() -> None:
        client = ConsoleClient(path)
        try:
            watch(client, video["consumer"], out, count=3, interval=0.5)
        finally:
            client.close()

    await asyncio.to_thread(follow)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and all(line.startswith("outbound-rtp") for line in lines)
    rates = [int(line.split(", ")[1].split(" ")[0]) for line in lines[1:]]
    assert all(rate > 0 for rate in rates), lines
    assert all("score 10" in line and "spatial 0" in line for line in lines)


async def test_the_interactive_console_runs_typed_commands(console_server: tuple[Server, str],
                                                           media_call: Call) -> None:
    _server, path = console_server
    result = await _cli(path, stdin="rooms\nbogus\nconsumers nobody\nquit\n")
    assert result.returncode == 0, result.stderr
    assert re.search(r"room +peers +joined +routers\n\S+ +3 +3 +1\n", result.stdout), result.stdout
    assert "error: unknown command 'bogus'" in result.stdout
    assert "error: no peer nobody" in result.stdout


async def test_log_levels_change_at_run_time_in_the_server_and_its_workers(
        console_server: tuple[Server, str]) -> None:
    _server, path = console_server
    levels = await _ask(path, "log", "kolabmeet.signaling", "debug")
    assert levels["kolabmeet.signaling"] == "DEBUG"
    assert (await _ask(path, "log", "kolabmeet.worker.transport", "INFO"))["kolabmeet.worker.transport"] == "INFO"
    with pytest.raises(RuntimeError, match="usage: log LOGGER LEVEL"):
        await _ask(path, "log", "kolabmeet.signaling", "loud")
    logging.getLogger("kolabmeet.signaling").setLevel(logging.NOTSET)


async def test_kick_and_close(console_server: tuple[Server, str], media_call: Call) -> None:
    server, path = console_server
    viewer = media_call.subscribers[0].browser
    assert await _ask(path, "kick", viewer.peer_id) == f"peer {viewer.peer_id} closed"
    await viewer.wait_for("moderator:kickPeer")
    room_id = media_call.publisher.room_id
    assert viewer.peer_id not in server.rooms.get(room_id).peers
    assert await _ask(path, "close", room_id) == f"room {room_id} closed"
    await media_call.publisher.wait_for("moderator:closeRoom")
    assert server.rooms.get(room_id) is None
    with pytest.raises(RuntimeError, match=f"no room {room_id}"):
        await _ask(path, "close", room_id)


async def test_bad_requests_get_clear_answers(console_server: tuple[Server, str]) -> None:
    _server, path = console_server
    reader, writer = await asyncio.open_unix_connection(path)
    for line, error in ((b"not json\n", "one JSON object per line"),
                        (b'{"args": []}\n', "a request looks like"),
                        (b'{"command": "dump", "args": [1]}\n', "args must be a list of strings"),
                        (b'{"command": "dump", "args": []}\n', "usage: dump ID"),
                        (b'{"command": "dump", "args": ["x"]}\n', "no transport, producer, consumer or router x")):
        writer.write(line)
        answer = json.loads(await reader.readline())
        assert not answer["ok"] and error in answer["error"], (line, answer)
    writer.write(b"x" * 70_000 + b"\n")
    answer = json.loads(await reader.readline())
    assert "longer than" in answer["error"]
    writer.close()
    out = io.StringIO()
    client = await asyncio.to_thread(ConsoleClient, path)
    assert await asyncio.to_thread(run_line, client, "watch", out)
    assert "usage: watch ID" in out.getvalue()
    assert not await asyncio.to_thread(run_line, client, "quit", out)
    client.close()


def test_without_a_server_the_command_says_what_to_check(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "kolabmeet", "console", "--socket", str(tmp_path / "none.sock"),
                             "rooms"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "cannot open the console" in result.stderr and "is the server running" in result.stderr
