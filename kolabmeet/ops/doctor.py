"""`kolabmeet doctor`: check a deployment end to end, one line per check, OK or what to fix.

It reads the same environment as `kolabmeet serve` and checks, in order: the
configuration; the TLS certificate (readable, key matching, dates, names covering
PUBLIC_DOMAIN); how browsers will reach the signaling (ws:// refused by https://
pages); the announced address; the media ports; the TURN server (a real
allocation with REST credentials from TURN_STATIC_SECRET, over UDP and TCP); then
a WebRTC call of its own through the running server (ICE, DTLS, SRTP, a packet
forwarded and received back), and the same through TURN when TURN is configured.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import sys
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterator, Mapping
from urllib.parse import parse_qs, urlsplit

import aiohttp
import aioice.turn
from aioice import stun
from cryptography import x509

from kolabmeet.config import Config, ConfigError, load_config
from kolabmeet.ops.probe_peer import ProbeError, call_through
from kolabmeet.signaling.turn import turn_credentials

EXPIRY_WARNING_DAYS = 14
TURN_TIMEOUT = 5.0


@dataclass
class Finding:
    """One check: `ok`, its name, and what was seen or what to do."""

    ok: bool
    check: str
    message: str

    def line(self) -> str:
        return f"{'OK ' if self.ok else 'FIX'}  {self.check}: {self.message}"


def _ok(check: str, message: str) -> Finding:
    return Finding(True, check, message)


def _fix(check: str, message: str) -> Finding:
    return Finding(False, check, message)


def check_tls(config: Config, now: datetime.datetime | None = None) -> Iterator[Finding]:
    if not config.tls:
        yield _ok("TLS", "none here (SSL_CERT=none): a proxy in front must end TLS for PUBLIC_DOMAIN")
        return
    try:
        with open(config.ssl_cert, "rb") as handle:
            certificate = x509.load_pem_x509_certificate(handle.read())
    except (OSError, ValueError) as exc:
        yield _fix("TLS certificate", f"SSL_CERT {config.ssl_cert} cannot be read as PEM: {exc}")
        return
    now = now or datetime.datetime.now(datetime.timezone.utc)
    ends, starts = certificate.not_valid_after_utc, certificate.not_valid_before_utc
    if ends < now:
        yield _fix("TLS certificate", f"expired on {ends:%Y-%m-%d}: renew {config.ssl_cert}")
    elif starts > now:
        yield _fix("TLS certificate", f"not valid before {starts:%Y-%m-%d %H:%M} UTC (the clock, or the certificate?)")
    elif ends - now < datetime.timedelta(days=EXPIRY_WARNING_DAYS):
        yield _fix("TLS certificate", f"expires on {ends:%Y-%m-%d}, in {(ends - now).days} day(s): renew it soon")
    else:
        yield _ok("TLS certificate", f"valid until {ends:%Y-%m-%d}; the key matches")
    host = _host(config.public_domain)
    names = _certificate_names(certificate)
    if any(_name_matches(name, host) for name in names):
        yield _ok("TLS names", f"{host} is covered ({', '.join(names)})")
    else:
        yield _fix("TLS names", f"PUBLIC_DOMAIN {host} is not among the certificate's names ({', '.join(names)}): "
                                "browsers will refuse it; use a certificate for it or fix PUBLIC_DOMAIN")


def _host(public_domain: str) -> str:
    return urlsplit(f"//{public_domain}").hostname or public_domain


def _certificate_names(certificate: x509.Certificate) -> list[str]:
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [attribute.value for attribute in certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
    return [*san.get_values_for_type(x509.DNSName), *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))]


def _name_matches(name: str, host: str) -> bool:
    name, host = name.lower().rstrip("."), host.lower().rstrip(".")
    if name.startswith("*."):
        return host.count(".") == name.count(".") and host.split(".", 1)[1] == name[2:]
    return name == host


def check_signaling_scheme(config: Config) -> Iterator[Finding]:
    if config.tls:
        yield _ok("signaling", f"wss://{config.public_domain} (TLS here)")
    elif config.force_wss:
        yield _ok("signaling", f"wss://{config.public_domain} (FORCE_WSS: TLS is the proxy's)")
    else:
        yield _fix("signaling", f"tokens carry ws://{config.public_domain}: browsers refuse a ws:// connection from "
                                "the https:// Kolab app; behind a TLS proxy set FORCE_WSS=1, else set SSL_CERT/SSL_KEY")


def _bindable(address: str) -> bool:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError:
            return False
    return True


def check_announced_address(config: Config) -> Iterator[Finding]:
    announced = config.announced_address
    ip = ipaddress.ip_address(announced)
    listen = config.webrtc_listen_ip
    if ip.is_unspecified:
        yield _fix("announced address", f"{announced} cannot be reached: set WEBRTC_ANNOUNCED_ADDRESS to the IP "
                                        "clients reach this host at")
        return
    local = _bindable(announced)
    where = "an address of this host" if local else "not an address of this host: right only behind 1:1 NAT " \
        f"that forwards the media ports to {listen} (the call below tries it)"
    if ip.is_loopback and _is_loopback(config.listening_host):
        yield _ok("announced address", f"{announced} is loopback: for clients on this host only, as the "
                                       f"listener ({config.listening_host})")
    elif ip.is_loopback:
        yield _fix("announced address", f"{announced} is loopback: only this host can reach it; set "
                                        "WEBRTC_ANNOUNCED_ADDRESS to the IP clients reach")
    elif ip.is_private and not ip.is_loopback:
        yield _fix("announced address", f"{announced} is private ({where}): clients outside that network cannot "
                                        "reach it; set WEBRTC_ANNOUNCED_ADDRESS to the public IP, or rely on TURN")
    else:
        yield _ok("announced address", f"{announced} is {where}")
    if listen not in ("0.0.0.0", "::") and not _bindable(listen):
        yield _fix("listen address", f"WEBRTC_LISTEN_IP {listen} is not an address of this host")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def check_media_ports(config: Config, server_up: bool) -> Iterator[Finding]:
    listen = config.webrtc_listen_ip
    busy = []
    for index in range(config.num_workers):
        port = config.webrtc_port_base + index if config.webrtc_port_base else 0
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            family = socket.AF_INET6 if ":" in listen else socket.AF_INET
            with socket.socket(family, kind) as probe:
                try:
                    probe.bind((listen, port))
                except OSError:
                    busy.append(f"{port}/{'udp' if kind == socket.SOCK_DGRAM else 'tcp'}")
    ports = f"{config.webrtc_port_base}-{config.webrtc_port_base + config.num_workers - 1}"
    if not config.webrtc_port_base:
        yield _ok("media ports", "KOLABMEET_WEBRTC_PORT=0: the workers pick free ports when they start")
    elif not busy:
        yield _ok("media ports", f"{listen} ports {ports} (UDP, TCP) can be bound" +
                  (" (the server is not running)" if not server_up else ""))
    elif server_up:
        yield _ok("media ports", f"{', '.join(busy)} in use: by the running server, which answers")
    else:
        yield _fix("media ports", f"{', '.join(busy)} on {listen} are taken by another program: free them or set "
                                  "KOLABMEET_WEBRTC_PORT")


def turn_endpoint(config: Config) -> tuple[str, int, str] | None:
    """(host, port, transport in the URL) of TURN_SERVER."""
    if not config.turn_server:
        return None
    parts = urlsplit(config.turn_server.replace("turn:", "turn://", 1).replace("turns:", "turns://", 1))
    transport = parse_qs(parts.query).get("transport", ["udp"])[0]
    return parts.hostname or "", parts.port or (5349 if parts.scheme == "turns" else 3478), transport


def turn_relay(config: Config, transport: str) -> dict[str, Any]:
    host, port, _transport = turn_endpoint(config) or ("", 0, "")
    return {"host": host, "port": port, "transport": transport,
            **turn_credentials(config.turn_static_secret or "", "kolabmeet-doctor")}


async def check_turn(config: Config) -> list[Finding]:
    endpoint = turn_endpoint(config)
    if endpoint is None:
        return [_ok("TURN", "none configured (TURN_SERVER=none): clients behind strict firewalls cannot join")]
    host, port, _transport = endpoint
    findings = []
    for transport in ("udp", "tcp"):
        relay = turn_relay(config, transport)
        check = f"TURN {transport}"
        try:
            endpoint_, _protocol = await asyncio.wait_for(aioice.turn.create_turn_endpoint(
                asyncio.DatagramProtocol, (host, port), relay["username"], relay["credential"],
                transport=transport), TURN_TIMEOUT)
        except asyncio.TimeoutError:
            findings.append(_fix(check, f"no answer from {host}:{port}: is coturn running and the port open?"))
            continue
        except OSError as exc:
            findings.append(_fix(check, f"{host}:{port}: {exc.strerror or exc}: is coturn running there?"))
            continue
        except stun.TransactionFailed as exc:
            text = str(exc)
            if "401" in text or "Unauthorized" in text:
                findings.append(_fix(check, "coturn refused the credentials: TURN_STATIC_SECRET is not its "
                                            "static-auth-secret (or coturn lacks use-auth-secret)"))
            else:
                findings.append(_fix(check, f"{host}:{port} refused the allocation: {text}"))
            continue
        relayed = endpoint_.get_extra_info("sockname")
        endpoint_.close()
        findings.append(_ok(check, f"relay allocated at {relayed[0]}:{relayed[1]} with REST credentials"))
    return findings


async def _server_answers(config: Config) -> bool:
    base = config.local_url
    try:
        async with aiohttp.ClientSession() as http, http.get(
                base + "/meetmedia/api/health", headers={"X-Auth-Token": config.auth_token}, ssl=False,
                timeout=aiohttp.ClientTimeout(total=3)) as response:
            return response.status == 200
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
        return False


async def check_call(config: Config, server_up: bool, through_turn: str | None = None) -> Finding:
    check = "WebRTC call" + (f" through TURN ({through_turn})" if through_turn else "")
    if not server_up:
        return _fix(check, "the server does not answer GET /meetmedia/api/health on its listener: start it "
                           "(kolabmeet serve), then run the doctor again")
    turn = turn_relay(config, through_turn) if through_turn else None
    try:
        outcome = await call_through(config.local_url, config.auth_token, turn)
    except ProbeError as exc:
        return _fix(check, str(exc))
    return _ok(check, f"ICE, DTLS and SRTP up; {outcome}")


async def diagnose(env: Mapping[str, str] | None = None,
                   now: datetime.datetime | None = None) -> list[Finding]:
    """Every check's finding, in order; after a configuration error only that one."""
    try:
        config = load_config(env)
    except ConfigError as exc:
        return [_fix("configuration", str(exc))]
    findings = [_ok("configuration", "every variable is valid")]
    findings += [*check_tls(config, now), *check_signaling_scheme(config), *check_announced_address(config)]
    server_up = await _server_answers(config)
    findings += [*check_media_ports(config, server_up)]
    findings += await check_turn(config)
    steps: list[Callable[[], Awaitable[Finding]]] = [lambda: check_call(config, server_up)]
    if config.turn_server:
        steps += [lambda transport=t: check_call(config, server_up, transport) for t in ("udp", "tcp")]
    for step in steps:
        findings.append(await step())
    return findings


def main() -> int:
    findings = asyncio.run(diagnose())
    for finding in findings:
        print(finding.line(), flush=True)
    problems = sum(not f.ok for f in findings)
    print(f"{problems} thing(s) to fix" if problems else "all checks passed", file=sys.stderr)
    return 1 if problems else 0
