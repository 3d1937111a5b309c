"""Configuration from environment variables, validated once at start.

The names and defaults are those of the original Kolab Meet server (see
PROTOCOL.md); `KOLABMEET_*` variables are our own additions. Every problem is
reported as a `ConfigError` whose message names the variable.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import ssl
import tempfile
from dataclasses import dataclass, field
from typing import Mapping

DEFAULT_SSL_CERT = "/etc/pki/tls/certs/kolab.hosted.com.cert"
DEFAULT_SSL_KEY = "/etc/pki/tls/certs/kolab.hosted.com.key"
DEFAULT_TURN_SERVER = "turn:127.0.0.1:3478?transport=tcp"


class ConfigError(Exception):
    """A configuration value is missing or wrong; the message names the variable."""

    def __init__(self, variable: str, problem: str, exit_code: int = 2) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.exit_code = exit_code


@dataclass
class Config:
    """Everything the server reads from its environment."""

    auth_token: str
    listening_host: str = "0.0.0.0"
    listening_port: int = 12443
    public_domain: str = "127.0.0.1:12443"
    ssl_cert: str | None = DEFAULT_SSL_CERT
    ssl_key: str | None = DEFAULT_SSL_KEY
    force_wss: bool = False
    turn_server: str | None = None
    turn_static_secret: str | None = None
    webhook_url: str | None = None
    webhook_token: str = ""
    webrtc_listen_ip: str = "127.0.0.1"
    webrtc_announced_address: str | None = None
    num_workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    router_scale_size: int = 16
    max_incoming_bitrate: int = 1_500_000
    rtc_min_port: int = 40000
    rtc_max_port: int = 49999
    webrtc_port_base: int = 44444
    reconnect_grace: float = 10.0
    room_empty_timeout: float = 10.0
    request_timeout: float = 20.0
    request_tries: int = 3
    max_body_size: int = 5 * 1024 * 1024
    console_socket: str | None = None
    """The console's Unix socket (`kolabmeet console`); None: no console."""
    metrics_listen: tuple[str, int] | None = None
    """A listener of its own for GET /metrics, without the token; None: only behind the token."""
    pin_workers: bool = False
    """Each media worker bound to one CPU (worker i to the i-th this process may use)."""
    dev: bool = False

    @property
    def announced_address(self) -> str:
        return self.webrtc_announced_address or self.webrtc_listen_ip

    @property
    def tls(self) -> bool:
        return self.ssl_cert is not None

    @property
    def local_url(self) -> str:
        """The server's own listener as seen from this host (the HTTP API and the signaling)."""
        host = "127.0.0.1" if self.listening_host in ("0.0.0.0", "::") else self.listening_host
        return f"{'https' if self.tls else 'http'}://{host}:{self.listening_port}"

    @property
    def signaling_scheme(self) -> str:
        return "wss" if (self.tls or self.force_wss) else "ws"


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(name, f"must be between {low} and {high}, got {value}")
    return value


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(name, f"must be a number of seconds, got {raw!r}") from None
    if not 0 < value <= 86400:
        raise ConfigError(name, f"must be between 0 and 86400 seconds, got {raw}")
    return value


def _ip(env: Mapping[str, str], name: str, default: str | None) -> str | None:
    raw = env.get(name, "") or default
    if raw is None:
        return None
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        raise ConfigError(name, f"must be an IP address, got {raw!r}") from None


def _port_range(env: Mapping[str, str]) -> tuple[int, int]:
    raw = env.get("KOLABMEET_RTC_PORTS", "")
    if raw == "":
        return 40000, 49999
    low, sep, high = raw.partition("-")
    try:
        lo, hi = int(low), int(high)
    except ValueError:
        raise ConfigError("KOLABMEET_RTC_PORTS", f"must look like 40000-49999, got {raw!r}") from None
    if not (sep and 1024 <= lo <= hi <= 65535 and hi - lo >= 1):
        raise ConfigError("KOLABMEET_RTC_PORTS", f"must be a range of at least 2 ports within 1024-65535, got {raw!r}")
    return lo, hi


def _tls(env: Mapping[str, str], dev: bool) -> tuple[str | None, str | None]:
    cert = env.get("SSL_CERT", "") or ("none" if dev else DEFAULT_SSL_CERT)
    if cert.lower() == "none":
        return None, None
    key = env.get("SSL_KEY", "") or DEFAULT_SSL_KEY
    for name, path in (("SSL_CERT", cert), ("SSL_KEY", key)):
        if not os.path.isfile(path):
            raise ConfigError(name, f"file {path!r} does not exist (set SSL_CERT=none to serve without TLS)")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except OSError as exc:  # ssl.SSLError included
        raise ConfigError("SSL_CERT", f"{cert!r} with SSL_KEY {key!r} is not a usable PEM pair: {exc}") from None
    return cert, key


def _turn(env: Mapping[str, str], dev: bool) -> tuple[str | None, str | None]:
    server = env.get("TURN_SERVER", "") or ("none" if dev else DEFAULT_TURN_SERVER)
    if server.lower() == "none":
        return None, None
    if not server.startswith(("turn:", "turns:")):
        raise ConfigError("TURN_SERVER", f"must be a turn: or turns: URL or 'none', got {server!r}")
    secret = env.get("TURN_STATIC_SECRET", "")
    if not secret:
        raise ConfigError("TURN_STATIC_SECRET", "is required when TURN_SERVER is set (coturn static-auth-secret)")
    return server, secret


def _metrics_listen(env: Mapping[str, str]) -> tuple[str, int] | None:
    raw = env.get("KOLABMEET_METRICS_LISTEN", "")
    if not raw:
        return None
    host, sep, port = raw.rpartition(":")
    try:
        address = str(ipaddress.ip_address(host.strip("[]")))
        number = int(port)
    except ValueError:
        raise ConfigError("KOLABMEET_METRICS_LISTEN", f"must be IP:PORT like 127.0.0.1:9464, got {raw!r}") from None
    if not sep or not 0 <= number <= 65535:
        raise ConfigError("KOLABMEET_METRICS_LISTEN", f"must be IP:PORT like 127.0.0.1:9464, got {raw!r}")
    return address, number


def default_console_socket() -> str:
    """Under the user's runtime directory ($XDG_RUNTIME_DIR), else a folder of its own in the temp directory."""
    runtime = os.environ.get("XDG_RUNTIME_DIR") or os.path.join(tempfile.gettempdir(), f"kolabmeet-{os.getuid()}")
    return os.path.join(runtime, "kolabmeet", "console.sock")


def console_socket(env: Mapping[str, str]) -> str | None:
    raw = env.get("KOLABMEET_CONSOLE_SOCKET", "")
    if raw.lower() == "none":
        return None
    return raw or default_console_socket()


def _auth_token(env: Mapping[str, str], dev: bool) -> str:
    token = env.get("AUTH_TOKEN", "")
    if token:
        if len(token) < 16:
            raise ConfigError("AUTH_TOKEN", "must be at least 16 characters long")
        return token
    if dev:
        return secrets.token_hex(16)
    raise ConfigError("AUTH_TOKEN", "is required (the shared secret of the HTTP API); use --dev for a local try")


def load_config(env: Mapping[str, str] | None = None, dev: bool = False) -> Config:
    """Read and validate the configuration; raise ConfigError naming the variable."""
    env = os.environ if env is None else env
    listen_ip = _ip(env, "WEBRTC_LISTEN_IP", "127.0.0.1" if dev else None)
    if listen_ip is None:
        raise ConfigError("WEBRTC_LISTEN_IP", "is required (the IP the media sockets bind)", exit_code=3)
    ssl_cert, ssl_key = _tls(env, dev)
    turn_server, turn_secret = _turn(env, dev)
    rtc_min, rtc_max = _port_range(env)
    workers_var = "KOLABMEET_WORKERS" if env.get("KOLABMEET_WORKERS") else "MEDIASOUP_NUM_WORKERS"
    webhook_url = env.get("WEBHOOK_URL", "") or None
    if webhook_url and not webhook_url.startswith(("http://", "https://")):
        raise ConfigError("WEBHOOK_URL", f"must be an http(s) URL, got {webhook_url!r}")
    return Config(
        auth_token=_auth_token(env, dev),
        listening_host=env.get("LISTENING_HOST", "") or ("127.0.0.1" if dev else "0.0.0.0"),
        listening_port=_int(env, "LISTENING_PORT", 12443, 0, 65535),
        public_domain=env.get("PUBLIC_DOMAIN", "") or "127.0.0.1:12443",
        ssl_cert=ssl_cert,
        ssl_key=ssl_key,
        force_wss=bool(env.get("FORCE_WSS", "")),
        turn_server=turn_server,
        turn_static_secret=turn_secret,
        webhook_url=webhook_url,
        webhook_token=env.get("WEBHOOK_TOKEN", ""),
        webrtc_listen_ip=listen_ip,
        webrtc_announced_address=env.get("WEBRTC_ANNOUNCED_ADDRESS", "") or None,
        num_workers=_int(env, workers_var, os.cpu_count() or 1, 1, 256),
        router_scale_size=_int(env, "ROUTER_SCALE_SIZE", 16, 1, 10000),
        max_incoming_bitrate=_int(env, "KOLABMEET_MAX_INCOMING_BITRATE", 1_500_000, 10_000, 100_000_000),
        rtc_min_port=rtc_min,
        rtc_max_port=rtc_max,
        webrtc_port_base=_int(env, "KOLABMEET_WEBRTC_PORT", 44444, 0, 65000),
        reconnect_grace=_seconds(env, "KOLABMEET_RECONNECT_GRACE", 10.0),
        room_empty_timeout=_seconds(env, "KOLABMEET_ROOM_EMPTY_TIMEOUT", 10.0),
        request_timeout=_seconds(env, "KOLABMEET_REQUEST_TIMEOUT", 20.0),
        console_socket=console_socket(env),
        metrics_listen=_metrics_listen(env),
        pin_workers=env.get("KOLABMEET_PIN_WORKERS", "") not in ("", "0"),
        dev=dev,
    )
