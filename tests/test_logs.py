"""Log levels per module and the original server's DEBUG namespaces; the workers' line prefix."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from typing import Any

import aiohttp
import pytest

from kolabmeet.logs import LogConfigError, module_levels
from tests.helpers import KolabApp
from tests.media.test_webrtc_call import start_call
from tests.test_config import REPO, clean_env


def test_levels_per_module() -> None:
    levels = module_levels({"KOLABMEET_LOG_LEVELS": "kolabmeet.media=debug, kolabmeet.signaling=WARNING"})
    assert levels == {"kolabmeet.media": "DEBUG", "kolabmeet.signaling": "WARNING"}
    for bad in ("kolabmeet.media", "=DEBUG", "kolabmeet.media=LOUD"):
        with pytest.raises(LogConfigError, match="KOLABMEET_LOG_LEVELS"):
            module_levels({"KOLABMEET_LOG_LEVELS": bad})


@pytest.mark.parametrize(("debug", "expected"), [
    ("kolabmeet-server*", {"kolabmeet", "kolabmeet.signaling", "kolabmeet.api", "kolabmeet.webhooks"}),
    ("kolabmeet-server:Room", {"kolabmeet.signaling"}),
    ("mediasoup*", {"kolabmeet.media", "kolabmeet.worker"}),
    ("kolabmeet-server:Room,mediasoup:Worker", {"kolabmeet.signaling", "kolabmeet.media", "kolabmeet.worker"}),
    ("other*", set()),
])
def test_the_originals_debug_namespaces(debug: str, expected: set[str]) -> None:
    levels = module_levels({"DEBUG": debug})
    assert set(levels) == expected and set(levels.values()) <= {"DEBUG"}


def test_debug_wins_over_the_module_levels() -> None:
    levels = module_levels({"KOLABMEET_LOG_LEVELS": "kolabmeet.signaling=ERROR", "DEBUG": "kolabmeet-server:Peer"})
    assert levels == {"kolabmeet.signaling": "DEBUG"}


async def test_workers_prefix_their_lines_and_a_bad_module_level_stops_the_server() -> None:
    """A worker started as the server starts it logs with its index; a bad KOLABMEET_LOG_LEVELS stops the server."""
    script = ("import asyncio, logging\n"
              "from kolabmeet.media.worker_proxy import Worker\n"
              "async def main():\n"
              "    worker = await Worker.spawn(3)\n"
              "    await worker.request('worker.setLogLevel', '', {'logger': 'kolabmeet.worker', 'level': 'INFO'})\n"
              "    try:\n"
              "        await worker.request('worker.createRouter', '', {})\n"
              "    except Exception:\n"
              "        pass\n"
              "    await worker.close()\n"
              "asyncio.run(main())\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, cwd=REPO, stderr=asyncio.subprocess.PIPE,
        env=clean_env(KOLABMEET_WORKER_LOG_LEVEL="DEBUG", KOLABMEET_LOG_LEVELS="kolabmeet.worker=DEBUG"))
    _out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    line = next(line for line in err.decode().splitlines() if "worker.createRouter" in line)
    assert re.match(r"worker 3 \(pid \d+\) \S+ \S+ kolabmeet.worker WARNING request worker.createRouter failed", line)
    bad = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kolabmeet", "serve", "--dev", cwd=REPO, stderr=asyncio.subprocess.PIPE,
        env=clean_env(KOLABMEET_LOG_LEVELS="kolabmeet.media"))
    _out, err = await asyncio.wait_for(bad.communicate(), 30)
    assert bad.returncode == 2 and "KOLABMEET_LOG_LEVELS" in err.decode()


async def test_transport_events_are_one_line_each_with_their_ids(server_with: Any,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kolabmeet")
    async with server_with() as server, aiohttp.ClientSession() as http:
        call = await start_call(KolabApp(server, http))
        try:
            peer = call.server_peer(call.publisher)
            transport = next(t for t in peer.transports.values() if t.app_data["producing"])
            lines = [r.getMessage() for r in caplog.records if transport.id in r.getMessage()]
            prefix = f"room {peer.room_id}: peer {peer.id}: transport {transport.id}"
            assert f"{prefix} created (producing)" in lines
            assert f"{prefix} ICE completed" in lines or f"{prefix} ICE connected" in lines
            assert f"{prefix} DTLS connected" in lines
        finally:
            await call.close()
