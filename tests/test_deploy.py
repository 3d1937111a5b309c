"""The deployment files in deploy/: the environment and Dockerfile settings start a healthy server, the coturn
example grants relays to the REST credentials kolabmeet hands out, the systemd unit's paths agree."""

from __future__ import annotations

import asyncio
import configparser
import contextlib
import random
import secrets
import shutil
import sys
import tempfile
from pathlib import Path
from typing import AsyncIterator

import aioice.turn
import pytest

from kolabmeet.config import load_config
from kolabmeet.signaling.turn import turn_credentials
from tests.browser.coturn import RELAY_PORTS, TURNSERVER, answers, free_udp_tcp_port
from tests.helpers import free_port
from tests.test_config import REPO, clean_env, stop

DEPLOY = REPO / "deploy"


def _env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, as systemd's EnvironmentFile and docker's --env-file read them."""
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _sep, value = line.partition("=")
            values[key.strip()] = value
    return values


def _dockerfile_env() -> dict[str, str]:
    """The ENV of deploy/Dockerfile (one ENV instruction, continued lines)."""
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    (line,) = [line for line in text.splitlines() if line.startswith("ENV ")]
    return dict(pair.split("=", 1) for pair in line[4:].split())


def test_the_dockerfile_runs_as_a_user_with_a_health_check() -> None:
    lines = (DEPLOY / "Dockerfile").read_text().splitlines()
    assert lines[[i for i, line in enumerate(lines) if line.startswith("FROM ")][0]].endswith("-slim")
    assert "USER kolabmeet" in lines
    assert any(line.startswith("HEALTHCHECK") and '"kolabmeet", "health"' in line for line in lines)
    exposed = " ".join(line for line in lines if line.startswith("EXPOSE"))
    assert "12443/tcp" in exposed and "44444/udp" in exposed and "44444/tcp" in exposed


def test_the_example_environment_is_a_valid_configuration_behind_a_proxy() -> None:
    env = {**_env_file(DEPLOY / "kolabmeet.env"), **_dockerfile_env()}
    config = load_config(env)
    assert config.ssl_cert is None and config.force_wss and config.signaling_scheme == "wss"
    assert config.webrtc_announced_address == "203.0.113.10" and config.turn_static_secret


async def test_the_container_settings_give_a_healthy_server_and_the_health_command_says_so(tmp_path: Path) -> None:
    env = clean_env(**{**_env_file(DEPLOY / "kolabmeet.env"), **_dockerfile_env(),
                       "AUTH_TOKEN": secrets.token_hex(16), "LISTENING_PORT": str(free_port()),
                       "LISTENING_HOST": "127.0.0.1", "WEBRTC_LISTEN_IP": "127.0.0.1", "KOLABMEET_WEBRTC_PORT": "0",
                       "MEDIASOUP_NUM_WORKERS": "1", "KOLABMEET_CONSOLE_SOCKET": str(tmp_path / "console.sock"),
                       "WEBHOOK_URL": ""})
    assert await _health(env) == 1, "nothing listens yet"
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "kolabmeet", "serve", cwd=REPO, env=env,
                                                   stderr=asyncio.subprocess.DEVNULL)
    try:
        for _ in range(100):
            if await _health(env) == 0:
                break
            await asyncio.sleep(0.1)
        assert await _health(env) == 0
        assert await _health({**env, "AUTH_TOKEN": secrets.token_hex(16)}) == 1, "a wrong token is not healthy"
    finally:
        assert await stop(process) == 0
    assert await _health({**env, "WEBRTC_LISTEN_IP": "nope"}, "--config-only") == 2


async def _health(env: dict[str, str], *args: str) -> int:
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "kolabmeet", "health", *args, cwd=REPO,
                                                   env=env, stderr=asyncio.subprocess.DEVNULL)
    return await asyncio.wait_for(process.wait(), 30)


def test_the_systemd_unit_agrees_with_the_layout() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment]
    unit.read(DEPLOY / "kolabmeet.service")
    service = unit["Service"]
    assert service["User"] == "kolabmeet" and service["ExecStart"] == "/opt/kolabmeet/venv/bin/kolabmeet serve"
    assert service["RuntimeDirectory"] == "kolabmeet"
    assert service["Environment"] == "KOLABMEET_CONSOLE_SOCKET=/run/kolabmeet/console.sock"
    assert set(service["RestartPreventExitStatus"].split()) == {"2", "3"}, "configuration errors: no restart loop"


@contextlib.asynccontextmanager
async def _example_coturn() -> AsyncIterator[tuple[int, str]]:
    """coturn with deploy/turnserver.conf, moved to 127.0.0.1 and free ports: (port, its static-auth-secret)."""
    if not shutil.which(TURNSERVER):
        pytest.fail(f"{TURNSERVER} is missing: install Debian's coturn (apt-get install coturn)")
    secret = _env_file(DEPLOY / "turnserver.conf")["static-auth-secret"]
    port, low = free_udp_tcp_port(), random.randrange(61000, 65535 - RELAY_PORTS)
    with tempfile.TemporaryDirectory(prefix="coturn-") as tmp:
        process = await asyncio.create_subprocess_exec(
            TURNSERVER, "-c", str(DEPLOY / "turnserver.conf"), "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
            f"--listening-port={port}", "--no-tls", "--no-dtls", f"--min-port={low}",
            f"--max-port={low + RELAY_PORTS - 1}", "--log-file=stdout", f"--pidfile={tmp}/pid", f"--userdb={tmp}/db",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        try:
            for _ in range(100):
                if await asyncio.to_thread(answers, port):
                    break
                await asyncio.sleep(0.1)
            else:
                pytest.fail("coturn with deploy/turnserver.conf did not come up")
            yield port, secret
        finally:
            process.terminate()
            await asyncio.wait_for(process.wait(), 10)


async def test_the_coturn_example_relays_for_kolabmeets_credentials() -> None:
    async with _example_coturn() as (port, secret):
        for transport in ("udp", "tcp"):
            credentials = turn_credentials(secret, "deploy-test")
            relay, _protocol = await asyncio.wait_for(aioice.turn.create_turn_endpoint(
                asyncio.DatagramProtocol, ("127.0.0.1", port), credentials["username"], credentials["credential"],
                transport=transport), 10)
            try:
                relayed = relay.get_extra_info("sockname")
                assert relayed is not None and relayed[1] > 0, transport
            finally:
                relay.close()
        wrong = turn_credentials("not-the-secret", "deploy-test")
        with pytest.raises(Exception, match="401|Unauthorized"):
            await asyncio.wait_for(aioice.turn.create_turn_endpoint(
                asyncio.DatagramProtocol, ("127.0.0.1", port), wrong["username"], wrong["credential"]), 10)
