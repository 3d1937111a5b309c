"""The media sockets' buffers, and the operator's word when the kernel caps them."""

from __future__ import annotations

import logging
import socket

import pytest

from kolabmeet.media.worker import udp


def test_a_media_socket_gets_its_buffers_or_the_operator_is_told(monkeypatch: pytest.MonkeyPatch,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    with open("/proc/sys/net/core/rmem_max") as f:
        rmem_max = int(f.read())
    monkeypatch.setattr(udp, "_capped_told", False)
    monkeypatch.setattr(udp, "SOCKET_BUFFER", rmem_max * 2)  # more than the kernel grants
    with caplog.at_level(logging.WARNING, logger="kolabmeet.media.worker"):
        for _ in range(2):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.tune(sock)
            assert sock.getblocking() is False
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == 2 * rmem_max
            sock.close()
    told = [r.getMessage() for r in caplog.records if "net.core.rmem_max" in r.getMessage()]
    assert len(told) == 1, "told once"
    assert f"sysctl -w net.core.rmem_max={rmem_max * 2}" in told[0]


def test_within_the_kernels_limit_nothing_is_said(monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(udp, "_capped_told", False)
    monkeypatch.setattr(udp, "SOCKET_BUFFER", 64 * 1024)
    with caplog.at_level(logging.WARNING, logger="kolabmeet.media.worker"):
        sock = udp.bind_udp("127.0.0.1", 40000, 49999)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= 2 * 64 * 1024
        sock.close()
    assert not [r for r in caplog.records if "rmem_max" in r.getMessage()]
