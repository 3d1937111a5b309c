"""Debian's coturn on 127.0.0.1 for the browser tests: a random port and static-auth-secret, its log kept."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import secrets
import shutil
import socket
import struct
import tempfile
import time
from dataclasses import dataclass, field
from typing import AsyncIterator

import pytest

TURNSERVER = "/usr/bin/turnserver"
REALM = "kolabmeet.test"
RELAY_PORTS = 200
"""Relay ports per coturn, a random block above Linux's ephemeral range (32768-60999)."""
ALLOCATION = re.compile(r"session \d+: realm <[^>]*> user <([^>]*)>: incoming packet ALLOCATE processed, success")
"""What coturn logs (with --verbose) for every relay allocation it grants."""


@dataclass
class Coturn:
    """A running coturn: where it listens, its secret, and every line it logged so far."""

    port: int
    secret: str
    lines: list[str] = field(default_factory=list)

    def url(self, transport: str) -> str:
        """The TURN URL that kolabmeet hands out, for transport "udp" or "tcp"."""
        return f"turn:127.0.0.1:{self.port}?transport={transport}"

    def allocations(self) -> list[str]:
        """The username of every relay allocation coturn granted so far, in order."""
        return [match[1] for line in self.lines if (match := ALLOCATION.search(line))]

    def log(self) -> str:
        return "\n".join(self.lines)


def free_udp_tcp_port() -> int:
    """A port of 127.0.0.1 that is free for both TCP and UDP."""
    while True:
        with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def answers(port: int) -> bool:
    """Whether 127.0.0.1:port accepts TCP and answers a STUN Binding request over UDP."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return stun_binding_answered(port)
    return False


def stun_binding_answered(port: int) -> bool:
    """Whether a STUN Binding request to 127.0.0.1:port over UDP gets a success response."""
    transaction = os.urandom(12)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(0.2)
        udp.sendto(struct.pack("!HHI", 0x0001, 0, 0x2112A442) + transaction, ("127.0.0.1", port))
        try:
            answer = udp.recv(2048)
        except OSError:
            return False
    return answer[:2] == b"\x01\x01" and answer[8:20] == transaction


@contextlib.asynccontextmanager
async def running_coturn(timeout: float = 10.0) -> AsyncIterator[Coturn]:
    """coturn listening (UDP and TCP, no TLS/DTLS, no CLI) and relaying on 127.0.0.1 only; stopped at the end."""
    if not shutil.which(TURNSERVER):
        pytest.fail(f"{TURNSERVER} is missing: install Debian's coturn (apt-get install coturn)")
    turn = Coturn(port=free_udp_tcp_port(), secret=secrets.token_hex(16))
    min_port = random.randrange(61000, 65535 - RELAY_PORTS)
    with tempfile.TemporaryDirectory(prefix="coturn-") as tmp:
        process = await asyncio.create_subprocess_exec(
            TURNSERVER, "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", f"--listening-port={turn.port}",
            "--use-auth-secret", f"--static-auth-secret={turn.secret}", f"--realm={REALM}",
            "--allow-loopback-peers", "--no-cli", "--no-tls", "--no-dtls", "--no-rfc5780",
            f"--min-port={min_port}", f"--max-port={min_port + RELAY_PORTS - 1}",
            "--log-file=stdout", "--verbose", f"--pidfile={tmp}/turnserver.pid", f"--userdb={tmp}/turndb",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )

        async def read_log() -> None:
            assert process.stdout is not None
            async for raw in process.stdout:
                turn.lines.append(raw.decode(errors="replace").rstrip())

        reader = asyncio.create_task(read_log())
        try:
            end = time.monotonic() + timeout
            while not await asyncio.to_thread(answers, turn.port):
                if process.returncode is not None or time.monotonic() > end:
                    pytest.fail(f"coturn did not come up on 127.0.0.1:{turn.port} (exit {process.returncode}):\n"
                                f"{turn.log()}")
                await asyncio.sleep(0.1)
            yield turn
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 5)
                except asyncio.TimeoutError:
                    process.kill()
                    await process.wait()
            await reader
