"""Configuration: every variable of PROTOCOL.md, its default, its validation; the `kolabmeet serve` command."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import re
import signal
import ssl
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kolabmeet.config import DEFAULT_SSL_CERT, DEFAULT_SSL_KEY, ConfigError, load_config
from tests.helpers import API, free_port

REPO = Path(__file__).resolve().parents[1]
GOOD_TOKEN = "0123456789abcdef0123456789abcdef"
# The smallest valid production environment: TLS and TURN explicitly off.
BASE = {"AUTH_TOKEN": GOOD_TOKEN, "WEBRTC_LISTEN_IP": "127.0.0.1", "SSL_CERT": "none", "TURN_SERVER": "none"}


def env_with(**changes: str | None) -> dict[str, str]:
    env = dict(BASE)
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def config_error(env: dict[str, str], dev: bool = False) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(env, dev=dev)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{info.value.variable}: ")
    return info.value


def make_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "server.cert", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture(scope="module")
def cert_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert(tmp_path_factory.mktemp("tls"))


# ---------------------------------------------------------------- defaults


def test_defaults_are_protocol_defaults() -> None:
    config = load_config(BASE)
    assert config.auth_token == GOOD_TOKEN
    assert (config.listening_host, config.listening_port) == ("0.0.0.0", 12443)
    assert config.public_domain == "127.0.0.1:12443"
    assert config.force_wss is False
    assert (config.webhook_url, config.webhook_token) == (None, "")
    assert config.webrtc_listen_ip == "127.0.0.1"
    assert config.webrtc_announced_address is None and config.announced_address == "127.0.0.1"
    assert config.num_workers == (os.cpu_count() or 1)
    assert config.router_scale_size == 16
    assert (config.rtc_min_port, config.rtc_max_port) == (40000, 49999)
    assert config.webrtc_port_base == 44444
    assert (config.reconnect_grace, config.room_empty_timeout, config.request_timeout) == (10.0, 10.0, 20.0)
    assert config.request_tries == 3
    assert config.max_body_size == 5 * 1024 * 1024
    assert config.dev is False


def test_default_tls_files_are_kolabs() -> None:
    assert (DEFAULT_SSL_CERT, DEFAULT_SSL_KEY) == ("/etc/pki/tls/certs/kolab.hosted.com.cert",
                                                  "/etc/pki/tls/certs/kolab.hosted.com.key")
    error = config_error(env_with(SSL_CERT=None))
    assert error.variable == "SSL_CERT" and DEFAULT_SSL_CERT in str(error)


def test_default_turn_server_needs_its_secret() -> None:
    error = config_error(env_with(TURN_SERVER=None))
    assert error.variable == "TURN_STATIC_SECRET"
    config = load_config(env_with(TURN_SERVER=None, TURN_STATIC_SECRET="coturn-secret"))
    assert config.turn_server == "turn:127.0.0.1:3478?transport=tcp"
    assert config.turn_static_secret == "coturn-secret"


def test_empty_values_mean_default() -> None:
    env = env_with(LISTENING_HOST="", LISTENING_PORT="", PUBLIC_DOMAIN="", MEDIASOUP_NUM_WORKERS="",
                   ROUTER_SCALE_SIZE="", WEBHOOK_URL="", FORCE_WSS="", WEBRTC_ANNOUNCED_ADDRESS="")
    config = load_config(env)
    assert (config.listening_host, config.listening_port, config.public_domain) == ("0.0.0.0", 12443,
                                                                                    "127.0.0.1:12443")
    assert config.num_workers == (os.cpu_count() or 1) and config.router_scale_size == 16
    assert config.webhook_url is None and config.force_wss is False and config.webrtc_announced_address is None


# ---------------------------------------------------------------- every variable read


def test_every_variable_is_read(cert_pair: tuple[Path, Path]) -> None:
    cert, key = cert_pair
    env = {
        "AUTH_TOKEN": GOOD_TOKEN,
        "LISTENING_HOST": "127.0.0.2",
        "LISTENING_PORT": "8443",
        "PUBLIC_DOMAIN": "meet.example.org:443",
        "SSL_CERT": str(cert),
        "SSL_KEY": str(key),
        "FORCE_WSS": "1",
        "TURN_SERVER": "turns:turn.example.org:5349?transport=tcp",
        "TURN_STATIC_SECRET": "coturn-secret",
        "WEBHOOK_URL": "https://kolab.example.org/api/webhooks/meet",
        "WEBHOOK_TOKEN": "hook-token",
        "WEBRTC_LISTEN_IP": "0.0.0.0",
        "WEBRTC_ANNOUNCED_ADDRESS": "203.0.113.7",
        "MEDIASOUP_NUM_WORKERS": "3",
        "ROUTER_SCALE_SIZE": "8",
        "KOLABMEET_RTC_PORTS": "50000-50100",
        "KOLABMEET_WEBRTC_PORT": "45000",
        "KOLABMEET_RECONNECT_GRACE": "2.5",
        "KOLABMEET_ROOM_EMPTY_TIMEOUT": "30",
        "KOLABMEET_REQUEST_TIMEOUT": "7",
        "KOLABMEET_PIN_WORKERS": "1",
    }
    config = load_config(env)
    assert config.auth_token == GOOD_TOKEN
    assert (config.listening_host, config.listening_port) == ("127.0.0.2", 8443)
    assert config.public_domain == "meet.example.org:443"
    assert (config.ssl_cert, config.ssl_key) == (str(cert), str(key)) and config.tls
    assert config.force_wss is True and config.signaling_scheme == "wss"
    assert config.turn_server == "turns:turn.example.org:5349?transport=tcp"
    assert config.turn_static_secret == "coturn-secret"
    assert config.webhook_url == "https://kolab.example.org/api/webhooks/meet"
    assert config.webhook_token == "hook-token"
    assert config.webrtc_listen_ip == "0.0.0.0"
    assert config.webrtc_announced_address == "203.0.113.7" and config.announced_address == "203.0.113.7"
    assert config.num_workers == 3
    assert config.router_scale_size == 8
    assert (config.rtc_min_port, config.rtc_max_port) == (50000, 50100)
    assert config.webrtc_port_base == 45000
    assert (config.reconnect_grace, config.room_empty_timeout, config.request_timeout) == (2.5, 30.0, 7.0)
    assert config.pin_workers is True
    assert load_config(dict(env, KOLABMEET_PIN_WORKERS="0")).pin_workers is False


def test_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        monkeypatch.delenv(name)
    for name, value in env_with(LISTENING_PORT="9999").items():
        monkeypatch.setenv(name, value)
    assert load_config().listening_port == 9999


@pytest.mark.parametrize("value", ["1", "yes", "false", "0"])
def test_force_wss_is_any_non_empty_value(value: str) -> None:
    config = load_config(env_with(FORCE_WSS=value))
    assert config.force_wss is True and config.signaling_scheme == "wss" and not config.tls


@pytest.mark.parametrize("value", ["none", "None", "NONE"])
def test_ssl_cert_none_disables_tls(value: str) -> None:
    config = load_config(env_with(SSL_CERT=value, SSL_KEY="/no/such/key"))
    assert (config.ssl_cert, config.ssl_key) == (None, None)
    assert not config.tls and config.signaling_scheme == "ws"


def test_tls_files(cert_pair: tuple[Path, Path]) -> None:
    cert, key = cert_pair
    config = load_config(env_with(SSL_CERT=str(cert), SSL_KEY=str(key)))
    assert config.tls and config.signaling_scheme == "wss"


def test_ssl_cert_missing_file_is_named(tmp_path: Path) -> None:
    error = config_error(env_with(SSL_CERT=str(tmp_path / "missing.cert")))
    assert error.variable == "SSL_CERT" and "missing.cert" in str(error) and error.exit_code == 2


def test_ssl_key_missing_file_is_named(cert_pair: tuple[Path, Path], tmp_path: Path) -> None:
    error = config_error(env_with(SSL_CERT=str(cert_pair[0]), SSL_KEY=str(tmp_path / "missing.key")))
    assert error.variable == "SSL_KEY"


def test_ssl_key_defaults_to_kolabs(cert_pair: tuple[Path, Path]) -> None:
    error = config_error(env_with(SSL_CERT=str(cert_pair[0]), SSL_KEY=None))
    assert error.variable == "SSL_KEY" and DEFAULT_SSL_KEY in str(error)


def test_ssl_files_that_are_no_pem_pair_are_named(cert_pair: tuple[Path, Path], tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    assert config_error(env_with(SSL_CERT=str(garbage), SSL_KEY=str(cert_pair[1]))).variable == "SSL_CERT"
    assert config_error(env_with(SSL_CERT=str(cert_pair[0]), SSL_KEY=str(garbage))).variable == "SSL_CERT"
    other_key = make_cert(tmp_path)[1]
    error = config_error(env_with(SSL_CERT=str(cert_pair[0]), SSL_KEY=str(other_key)))
    assert error.variable == "SSL_CERT" and "SSL_KEY" in str(error)


# ---------------------------------------------------------------- AUTH_TOKEN, WEBRTC_LISTEN_IP, TURN


@pytest.mark.parametrize("token", [None, ""])
def test_no_auth_token_refused_outside_dev(token: str | None) -> None:
    error = config_error(env_with(AUTH_TOKEN=token))
    assert error.variable == "AUTH_TOKEN" and error.exit_code == 2


def test_short_auth_token_refused() -> None:
    assert config_error(env_with(AUTH_TOKEN="short")).variable == "AUTH_TOKEN"


def test_dev_mode_generates_a_token_and_stays_local() -> None:
    first, second = load_config({}, dev=True), load_config({}, dev=True)
    assert re.fullmatch(r"[0-9a-f]{32}", first.auth_token) and first.auth_token != second.auth_token
    assert first.listening_host == "127.0.0.1" and first.webrtc_listen_ip == "127.0.0.1"
    assert not first.tls and first.turn_server is None and first.dev is True


def test_dev_mode_keeps_given_values() -> None:
    config = load_config({"AUTH_TOKEN": GOOD_TOKEN, "LISTENING_HOST": "0.0.0.0",
                          "TURN_SERVER": "turn:127.0.0.1:3478", "TURN_STATIC_SECRET": "s"}, dev=True)
    assert config.auth_token == GOOD_TOKEN and config.listening_host == "0.0.0.0"
    assert config.turn_server == "turn:127.0.0.1:3478"


def test_webrtc_listen_ip_missing_exits_3() -> None:
    for env in (env_with(WEBRTC_LISTEN_IP=None), env_with(WEBRTC_LISTEN_IP="")):
        error = config_error(env)
        assert error.variable == "WEBRTC_LISTEN_IP" and error.exit_code == 3


@pytest.mark.parametrize(("given", "stored"), [("0.0.0.0", "0.0.0.0"), ("10.1.2.3", "10.1.2.3"), ("::1", "::1"),
                                               ("0:0:0:0:0:0:0:1", "::1")])
def test_webrtc_listen_ip_values(given: str, stored: str) -> None:
    assert load_config(env_with(WEBRTC_LISTEN_IP=given)).webrtc_listen_ip == stored


def test_turn_server_without_secret_refused() -> None:
    error = config_error(env_with(TURN_SERVER="turn:turn.example.org:3478"))
    assert error.variable == "TURN_STATIC_SECRET" and error.exit_code == 2


@pytest.mark.parametrize("value", ["none", "None"])
def test_turn_server_none(value: str) -> None:
    config = load_config(env_with(TURN_SERVER=value, TURN_STATIC_SECRET="ignored"))
    assert config.turn_server is None and config.turn_static_secret is None


# ---------------------------------------------------------------- workers


def test_workers_variable_and_alias() -> None:
    assert load_config(env_with(MEDIASOUP_NUM_WORKERS="2")).num_workers == 2
    assert load_config(env_with(KOLABMEET_WORKERS="5")).num_workers == 5
    assert load_config(env_with(MEDIASOUP_NUM_WORKERS="2", KOLABMEET_WORKERS="5")).num_workers == 5
    assert load_config(env_with(MEDIASOUP_NUM_WORKERS="2", KOLABMEET_WORKERS="")).num_workers == 2


def test_workers_errors_name_the_variable_given() -> None:
    assert config_error(env_with(MEDIASOUP_NUM_WORKERS="0")).variable == "MEDIASOUP_NUM_WORKERS"
    assert config_error(env_with(KOLABMEET_WORKERS="zero", MEDIASOUP_NUM_WORKERS="2")).variable == "KOLABMEET_WORKERS"


# ---------------------------------------------------------------- every bad value names its variable


BAD_VALUES = [
    ("LISTENING_PORT", "abc"), ("LISTENING_PORT", "-1"), ("LISTENING_PORT", "65536"), ("LISTENING_PORT", "12443.0"),
    ("MEDIASOUP_NUM_WORKERS", "0"), ("MEDIASOUP_NUM_WORKERS", "-2"), ("MEDIASOUP_NUM_WORKERS", "four"),
    ("MEDIASOUP_NUM_WORKERS", "100000"), ("KOLABMEET_WORKERS", "0"),
    ("ROUTER_SCALE_SIZE", "0"), ("ROUTER_SCALE_SIZE", "many"), ("ROUTER_SCALE_SIZE", "1.5"),
    ("WEBRTC_LISTEN_IP", "localhost"), ("WEBRTC_LISTEN_IP", "1.2.3"), ("WEBRTC_LISTEN_IP", "256.0.0.1"),
    ("WEBRTC_LISTEN_IP", "::g"),
    ("TURN_SERVER", "stun:127.0.0.1:3478"), ("TURN_SERVER", "127.0.0.1:3478"), ("TURN_SERVER", "http://turn"),
    ("WEBHOOK_URL", "ftp://kolab.example.org/hook"), ("WEBHOOK_URL", "kolab.example.org/hook"),
    ("AUTH_TOKEN", "tooshort"),
    ("SSL_CERT", "/no/such/file.cert"),
    ("KOLABMEET_RTC_PORTS", "40000"), ("KOLABMEET_RTC_PORTS", "a-b"), ("KOLABMEET_RTC_PORTS", "50000-40000"),
    ("KOLABMEET_RTC_PORTS", "80-90"), ("KOLABMEET_RTC_PORTS", "40000-40000"), ("KOLABMEET_RTC_PORTS", "40000-70000"),
    ("KOLABMEET_WEBRTC_PORT", "-1"), ("KOLABMEET_WEBRTC_PORT", "65001"), ("KOLABMEET_WEBRTC_PORT", "x"),
    ("KOLABMEET_RECONNECT_GRACE", "0"), ("KOLABMEET_RECONNECT_GRACE", "-1"), ("KOLABMEET_RECONNECT_GRACE", "x"),
    ("KOLABMEET_RECONNECT_GRACE", "nan"), ("KOLABMEET_RECONNECT_GRACE", "inf"), ("KOLABMEET_RECONNECT_GRACE", "86401"),
    ("KOLABMEET_ROOM_EMPTY_TIMEOUT", "0"), ("KOLABMEET_ROOM_EMPTY_TIMEOUT", "soon"),
    ("KOLABMEET_REQUEST_TIMEOUT", "0"), ("KOLABMEET_REQUEST_TIMEOUT", "20s"),
]


@pytest.mark.parametrize(("variable", "value"), BAD_VALUES)
def test_bad_value_names_its_variable(variable: str, value: str) -> None:
    error = config_error(env_with(**{variable: value}))
    assert error.variable == variable
    assert str(error).startswith(f"{variable}: ")
    assert error.exit_code == 2


# ---------------------------------------------------------------- the command


def clean_env(**values: str) -> dict[str, str]:
    """Nothing of the test's environment but PATH: what a service manager gives."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **values}


async def run_cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kolabmeet", "serve", *args, cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 20)
    return process.returncode, stdout.decode(), stderr.decode()


@pytest.mark.parametrize(("env", "variable", "code"), [
    (clean_env(WEBRTC_LISTEN_IP="127.0.0.1", SSL_CERT="none", TURN_SERVER="none"), "AUTH_TOKEN", 2),
    (clean_env(**env_with(LISTENING_PORT="http")), "LISTENING_PORT", 2),
    (clean_env(**env_with(SSL_CERT="/no/such/kolab.cert")), "SSL_CERT", 2),
    (clean_env(**env_with(TURN_SERVER="turn:127.0.0.1:3478")), "TURN_STATIC_SECRET", 2),
    (clean_env(**env_with(WEBRTC_LISTEN_IP=None)), "WEBRTC_LISTEN_IP", 3),
], ids=["AUTH_TOKEN", "LISTENING_PORT", "SSL_CERT", "TURN_STATIC_SECRET", "WEBRTC_LISTEN_IP"])
async def test_cli_refuses_bad_config_with_one_line(env: dict[str, str], variable: str, code: int) -> None:
    returncode, stdout, stderr = await run_cli(env)
    assert returncode == code
    assert stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert variable in lines[0]


async def stop(process: asyncio.subprocess.Process) -> int:
    process.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(process.wait(), 10)


async def start_server(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kolabmeet", "serve", *args, cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)


async def test_cli_dev_mode_prints_its_token(http: aiohttp.ClientSession, tmp_path: Path) -> None:
    port = free_port()
    console = str(tmp_path / "console.sock")
    process = await start_server(clean_env(LISTENING_PORT=str(port), MEDIASOUP_NUM_WORKERS="1",
                                           KOLABMEET_WEBRTC_PORT="0", KOLABMEET_CONSOLE_SOCKET=console), "--dev")
    try:
        token = ""
        while not token:
            line = (await asyncio.wait_for(process.stdout.readline(), 15)).decode()
            assert line, "the server ended without printing AUTH_TOKEN"
            if line.startswith("AUTH_TOKEN="):
                token = line.strip().split("=", 1)[1]
        assert re.fullmatch(r"[0-9a-f]{32}", token)
        base = f"http://127.0.0.1:{port}{API}"
        async with http.get(base + "/ping", headers={"X-Auth-Token": token}) as resp:
            assert resp.status == 200 and await resp.text() == "PONG"
        async with http.get(base + "/ping") as resp:
            assert resp.status == 403
        rooms = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kolabmeet", "console", "rooms", cwd=REPO, stdout=asyncio.subprocess.PIPE,
            env=clean_env(KOLABMEET_CONSOLE_SOCKET=console))
        assert (await asyncio.wait_for(rooms.communicate(), 20))[0].decode().strip() == "(none)"
    finally:
        returncode = await stop(process)
    assert returncode == 0 and not os.path.exists(console), "the console socket goes with the server"


async def wait_listening(http: aiohttp.ClientSession, url: str, token: str, process: asyncio.subprocess.Process,
                         **kwargs: Any) -> aiohttp.ClientResponse:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while True:
        assert process.returncode is None, "the server ended"
        try:
            async with http.get(url, headers={"X-Auth-Token": token}, **kwargs) as resp:
                await resp.read()
                return resp
        except aiohttp.ClientConnectorError:
            assert loop.time() < deadline, "the server does not listen"
            await asyncio.sleep(0.1)


async def test_cli_serves_tls(http: aiohttp.ClientSession, cert_pair: tuple[Path, Path]) -> None:
    cert, key = cert_pair
    port = free_port()
    env = clean_env(**env_with(SSL_CERT=str(cert), SSL_KEY=str(key), LISTENING_HOST="127.0.0.1",
                               LISTENING_PORT=str(port), PUBLIC_DOMAIN=f"127.0.0.1:{port}",
                               MEDIASOUP_NUM_WORKERS="1", KOLABMEET_WEBRTC_PORT="0"))
    process = await start_server(env)
    try:
        base = f"https://127.0.0.1:{port}{API}"
        resp = await wait_listening(http, base + "/ping", GOOD_TOKEN, process, ssl=False)
        assert resp.status == 200 and await resp.text() == "PONG"
        trusting = ssl.create_default_context(cafile=str(cert))
        async with http.post(base + "/sessions", json=[], headers={"X-Auth-Token": GOOD_TOKEN}, ssl=trusting) as resp:
            room_id = (await resp.json())["id"]
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=trusting)
        assert writer.get_extra_info("ssl_object").version() in ("TLSv1.2", "TLSv1.3")
        writer.close()
        async with http.post(f"{base}/sessions/{room_id}/connection", json={"role": 1},
                             headers={"X-Auth-Token": GOOD_TOKEN}, ssl=False) as resp:
            assert (await resp.json())["token"].startswith(f"wss://127.0.0.1:{port}?peerId=")
        with pytest.raises(aiohttp.ClientError):
            async with http.get(f"http://127.0.0.1:{port}{API}/ping", headers={"X-Auth-Token": GOOD_TOKEN}) as resp:
                assert resp.status != 200
    finally:
        returncode = await stop(process)
    assert returncode == 0


def test_console_socket_and_metrics_listener(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    config = load_config(BASE)
    assert config.console_socket == str(tmp_path / "kolabmeet" / "console.sock")
    assert config.metrics_listen is None
    assert load_config(env_with(KOLABMEET_CONSOLE_SOCKET="none")).console_socket is None
    assert load_config(env_with(KOLABMEET_CONSOLE_SOCKET="/run/km.sock")).console_socket == "/run/km.sock"
    assert load_config(env_with(KOLABMEET_METRICS_LISTEN="0.0.0.0:9464")).metrics_listen == ("0.0.0.0", 9464)
    assert load_config(env_with(KOLABMEET_METRICS_LISTEN="[::1]:9464")).metrics_listen == ("::1", 9464)
    for bad in ("9464", "localhost:9464", "127.0.0.1:http", "127.0.0.1:70000"):
        assert config_error(env_with(KOLABMEET_METRICS_LISTEN=bad)).variable == "KOLABMEET_METRICS_LISTEN"
