"""`kolabmeet doctor` against a running server and a real coturn: passing and failing deployments."""

from __future__ import annotations

import asyncio
import datetime
import sys
from pathlib import Path
from typing import AsyncIterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kolabmeet.app import Server
from kolabmeet.ops.doctor import Finding, diagnose
from tests.browser.coturn import Coturn, running_coturn
from tests.conftest import running_server
from tests.helpers import TOKEN, free_port
from tests.test_config import REPO, clean_env


@pytest.fixture
async def coturn() -> AsyncIterator[Coturn]:
    async with running_coturn() as turn:
        yield turn


@pytest.fixture
async def deployment() -> AsyncIterator[tuple[Server, dict[str, str]]]:
    """A running server and the environment that describes it (as its operator would have it)."""
    port_base = free_port()
    async with running_server(webrtc_port_base=port_base, force_wss=True) as server:
        yield server, {"AUTH_TOKEN": TOKEN, "LISTENING_HOST": "127.0.0.1", "LISTENING_PORT": str(server.port),
                       "WEBRTC_LISTEN_IP": "127.0.0.1", "KOLABMEET_WEBRTC_PORT": str(port_base),
                       "MEDIASOUP_NUM_WORKERS": "1", "SSL_CERT": "none", "TURN_SERVER": "none", "FORCE_WSS": "1",
                       "PUBLIC_DOMAIN": "127.0.0.1"}


def _by_check(findings: list[Finding]) -> dict[str, Finding]:
    return {finding.check: finding for finding in findings}


def _cert(directory: Path, name: str, days: tuple[int, int]) -> dict[str, str]:
    """SSL_CERT/SSL_KEY of a self-signed certificate for `name`, valid from days[0] to days[1] from now."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now + datetime.timedelta(days=days[0]))
            .not_valid_after(now + datetime.timedelta(days=days[1]))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / f"{name}.cert", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return {"SSL_CERT": str(cert_path), "SSL_KEY": str(key_path)}


async def test_a_healthy_deployment_with_turn_passes_every_check(deployment: tuple[Server, dict[str, str]],
                                                                  coturn: Coturn) -> None:
    _server, env = deployment
    findings = await diagnose({**env, "TURN_SERVER": coturn.url("udp"), "TURN_STATIC_SECRET": coturn.secret})
    assert all(f.ok for f in findings), "\n".join(f.line() for f in findings)
    checks = _by_check(findings)
    assert {"configuration", "TLS", "signaling", "announced address", "media ports", "TURN udp", "TURN tcp",
            "WebRTC call", "WebRTC call through TURN (udp)", "WebRTC call through TURN (tcp)"} <= checks.keys()
    assert "forwarded and decrypted" in checks["WebRTC call through TURN (tcp)"].message
    assert "in use: by the running server" in checks["media ports"].message
    assert len([user for user in coturn.allocations() if user.endswith(":kolabmeet-doctor")]) >= 4


async def test_a_wrong_turn_secret_says_so(deployment: tuple[Server, dict[str, str]], coturn: Coturn) -> None:
    _server, env = deployment
    checks = _by_check(await diagnose({**env, "TURN_SERVER": coturn.url("tcp"),
                                       "TURN_STATIC_SECRET": "not-the-coturn-secret"}))
    for transport in ("udp", "tcp"):
        assert not checks[f"TURN {transport}"].ok
        assert "TURN_STATIC_SECRET is not its static-auth-secret" in checks[f"TURN {transport}"].message
        assert not checks[f"WebRTC call through TURN ({transport})"].ok
    assert checks["WebRTC call"].ok, "the direct call does not need TURN"


async def test_an_unreachable_turn_server_says_so(deployment: tuple[Server, dict[str, str]]) -> None:
    _server, env = deployment
    checks = _by_check(await diagnose({**env, "TURN_SERVER": f"turn:127.0.0.1:{free_port()}?transport=udp",
                                       "TURN_STATIC_SECRET": "some-secret"}))
    assert "no answer from 127.0.0.1" in checks["TURN udp"].message or "is coturn running" in checks["TURN udp"].message
    assert "is coturn running" in checks["TURN tcp"].message and not checks["TURN tcp"].ok


async def test_certificates_expired_or_for_another_name(deployment: tuple[Server, dict[str, str]],
                                                        tmp_path: Path) -> None:
    _server, env = deployment
    expired = _by_check(await diagnose({**env, **_cert(tmp_path, "meet.example.org", (-30, -1)),
                                        "PUBLIC_DOMAIN": "meet.example.org:12443"}))
    assert not expired["TLS certificate"].ok and "expired on" in expired["TLS certificate"].message
    assert expired["TLS names"].ok
    soon = _by_check(await diagnose({**env, **_cert(tmp_path, "meet.example.org", (-30, 5)),
                                     "PUBLIC_DOMAIN": "meet.example.org"}))
    assert not soon["TLS certificate"].ok and "renew it soon" in soon["TLS certificate"].message
    other = _by_check(await diagnose({**env, **_cert(tmp_path, "other.example.org", (-1, 90)),
                                      "PUBLIC_DOMAIN": "meet.example.org"}))
    assert other["TLS certificate"].ok
    assert not other["TLS names"].ok and "meet.example.org is not among the certificate's names" in \
        other["TLS names"].message


async def test_ws_urls_for_https_pages_are_flagged(deployment: tuple[Server, dict[str, str]]) -> None:
    _server, env = deployment
    checks = _by_check(await diagnose({**env, "FORCE_WSS": ""}))
    assert not checks["signaling"].ok and "browsers refuse a ws:// connection" in checks["signaling"].message
    assert "FORCE_WSS=1" in checks["signaling"].message


async def test_a_wrong_announced_address_fails_the_call_with_its_name() -> None:
    """The server announces 192.0.2.10 (not this host, nothing forwards it): the doctor's own call cannot
    reach it, and the line names the address."""
    port_base = free_port()
    async with running_server(webrtc_port_base=port_base, webrtc_announced_address="192.0.2.10") as server:
        env = {"AUTH_TOKEN": TOKEN, "LISTENING_HOST": "127.0.0.1", "LISTENING_PORT": str(server.port),
               "WEBRTC_LISTEN_IP": "127.0.0.1", "WEBRTC_ANNOUNCED_ADDRESS": "192.0.2.10",
               "KOLABMEET_WEBRTC_PORT": str(port_base), "MEDIASOUP_NUM_WORKERS": "1", "SSL_CERT": "none",
               "TURN_SERVER": "none", "FORCE_WSS": "1"}
        checks = _by_check(await diagnose(env))
    assert "not an address of this host" in checks["announced address"].message
    assert not checks["WebRTC call"].ok and f"192.0.2.10:{port_base}" in checks["WebRTC call"].message
    private = _by_check(await diagnose({**env, "WEBRTC_ANNOUNCED_ADDRESS": "10.1.2.3"}))
    assert not private["announced address"].ok and "10.1.2.3 is private" in private["announced address"].message


async def test_no_server_and_bad_configuration(tmp_path: Path) -> None:
    env = {"AUTH_TOKEN": TOKEN, "LISTENING_HOST": "127.0.0.1", "LISTENING_PORT": str(free_port()),
           "WEBRTC_LISTEN_IP": "127.0.0.1", "SSL_CERT": "none", "TURN_SERVER": "none", "FORCE_WSS": "1",
           "KOLABMEET_WEBRTC_PORT": str(free_port()), "MEDIASOUP_NUM_WORKERS": "1"}
    checks = _by_check(await diagnose(env))
    assert not checks["WebRTC call"].ok and "start it (kolabmeet serve)" in checks["WebRTC call"].message
    assert checks["media ports"].ok and "can be bound" in checks["media ports"].message
    (only,) = await diagnose({**env, "LISTENING_PORT": "http"})
    assert not only.ok and only.check == "configuration" and "LISTENING_PORT" in only.message


async def test_the_command_prints_one_line_per_check(deployment: tuple[Server, dict[str, str]]) -> None:
    _server, env = deployment
    for overrides, code in (({}, 0), ({"FORCE_WSS": ""}, 1)):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kolabmeet", "doctor", cwd=REPO, env=clean_env(**{**env, **overrides}),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 60)
        lines = out.decode().splitlines()
        assert process.returncode == code, out.decode() + err.decode()
        assert lines and all(line.startswith(("OK   ", "FIX  ")) for line in lines)
        assert ("all checks passed" if code == 0 else "1 thing(s) to fix") in err.decode()
