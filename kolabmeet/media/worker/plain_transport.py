"""Plain RTP transport: RTP and RTCP on their own UDP ports, no ICE, no encryption."""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, Any

from kolabmeet.media.errors import MediaError
from kolabmeet.media.worker.send import Sender, UdpSender
from kolabmeet.media.worker.transport import DRAIN_BURST, RECV_BUFFER, SEND, Notify, Transport
from kolabmeet.media.worker.udp import bind_udp

if TYPE_CHECKING:
    from kolabmeet.media.worker.router import Router

Address = tuple[str, int]


class PlainTransport(Transport):
    """RTP over UDP to one remote. With comedia the remote is learnt from the first packet.

    Once the remote is known the RTP socket is connected to it (see `UdpSender`): sending is
    cheaper, and from then on the kernel hands this socket only what the remote sends, as
    mediasoup ignores RTP from any other address."""

    kind_name = "plain-rtp-transport"

    def __init__(self, transport_id: str, router: "Router", notify: Notify, data: dict[str, Any]) -> None:
        super().__init__(transport_id, router, notify)
        self.listen_ip: str = data["listenIp"]
        self.announced_address: str = data.get("announcedAddress") or self.listen_ip
        self.comedia: bool = bool(data.get("comedia", False))
        self.rtcp_mux: bool = bool(data.get("rtcpMux", False))
        low, high = data["portRange"]
        self.rtp_sock = bind_udp(self.listen_ip, low, high)
        self.rtcp_sock: socket.socket | None = None
        if not self.rtcp_mux:
            try:
                self.rtcp_sock = bind_udp(self.listen_ip, low, high)
            except MediaError:
                self.rtp_sock.close()
                raise
        self.remote: Address | None = None
        self.rtcp_remote: Address | None = None
        self._sender: Sender | None = None
        loop = asyncio.get_running_loop()
        loop.add_reader(self.rtp_sock.fileno(), self._on_readable, self.rtp_sock, False)
        if self.rtcp_sock is not None:
            loop.add_reader(self.rtcp_sock.fileno(), self._on_readable, self.rtcp_sock, True)

    def _on_readable(self, sock: socket.socket, rtcp_port: bool) -> None:
        """Read the socket: one event-loop wake-up for up to DRAIN_BURST datagrams waiting."""
        buf = RECV_BUFFER
        for _ in range(DRAIN_BURST):
            if self.closed:
                return
            try:
                length, address = sock.recvfrom_into(buf)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            if length < 8 or (buf[0] & 0xC0) != 0x80:
                continue
            if rtcp_port or 192 <= buf[1] <= 223:
                if self.comedia and self.rtcp_remote is None:
                    self._learn(address, rtcp=True)
                self.receive_rtcp(buf, length)
            elif length >= 12:
                if self.comedia and self.remote is None:
                    self._learn(address, rtcp=False)
                self.receive_rtp(buf, length)

    def _learn(self, address: Address, rtcp: bool) -> None:
        if not self.comedia:
            return
        if rtcp and self.rtcp_sock is not None:
            if self.rtcp_remote is None:
                self.rtcp_remote = address[:2]
                self.notify(self.id, "rtcptuple", {"rtcpTuple": self._tuple(self.rtcp_sock, self.rtcp_remote)})
            return
        if self.remote is None:
            self._use(UdpSender(self.rtp_sock, address[:2], SEND, connect=True))
            self.remote = address[:2]
            if self.rtcp_mux:
                self.rtcp_remote = self.remote
            self.notify(self.id, "tuple", {"tuple": self._tuple(self.rtp_sock, self.remote)})
            self.state_changed()

    def connect(self, data: dict[str, Any]) -> None:
        """Set the remote address (not needed with comedia)."""
        self.check_open()
        if self.comedia:
            raise MediaError("connect() is not allowed with comedia; the remote is learnt from its first packet")
        ip, port = data.get("ip"), data.get("port")
        if not isinstance(ip, str) or not isinstance(port, int) or not 0 < port < 65536:
            raise MediaError("connect needs ip (string) and port (1-65535)")
        rtcp_port = data.get("rtcpPort")
        if not self.rtcp_mux and not (isinstance(rtcp_port, int) and 0 < rtcp_port < 65536):
            raise MediaError("connect needs rtcpPort (1-65535) without rtcp-mux")
        try:
            sender = UdpSender(self.rtp_sock, (ip, port), SEND, connect=True)
        except ValueError:
            raise MediaError(f"connect needs a numeric {self._family_name} address as ip, not {ip!r}") from None
        self._use(sender)
        self.remote = (ip, port)
        self.rtcp_remote = self.remote if self.rtcp_mux else (ip, rtcp_port)
        self.state_changed()

    def _use(self, sender: Sender) -> None:
        """Send RTP through `sender`: its send_rtp takes the place of ours, so that the consumers'
        send step reaches the socket without a Python call per packet when it is the C twin."""
        self._adopt(sender)
        self.send_rtp = sender.send_rtp  # type: ignore[method-assign]

    def _adopt(self, sender: Sender) -> None:
        if self._sender is not None:
            self.bytes_sent += self._sender.bytes_sent
        self._sender = sender

    def can_send(self) -> bool:
        return self.remote is not None and not self.closed

    @property
    def _family_name(self) -> str:
        return "IPv6" if self.rtp_sock.family == socket.AF_INET6 else "IPv4"

    def send_rtp(self, view: memoryview, ext_map: bytes | None = None, priority: int = 1,
                 paced: bool = True, now: float = 0.0, twcc_seq: int = -1) -> bool:
        """Nothing goes before the remote is known; then the sender's send_rtp stands here (`_use`)."""
        return False

    def total_bytes_sent(self) -> int:
        return self.bytes_sent + (self._sender.bytes_sent if self._sender is not None else 0)

    def send_rtcp(self, data: bytes) -> None:
        if self.rtcp_remote is None or self.closed:
            return
        sock = self.rtcp_sock or self.rtp_sock
        try:
            sock.sendto(data, self.rtcp_remote)
        except OSError:
            return
        self.bytes_sent += len(data)

    def _tuple(self, sock: socket.socket, remote: Address | None) -> dict[str, Any]:
        local = sock.getsockname()
        result: dict[str, Any] = {"localIp": self.announced_address, "localPort": local[1], "protocol": "udp"}
        if remote is not None:
            result.update(remoteIp=remote[0], remotePort=remote[1])
        return result

    def info(self) -> dict[str, Any]:
        """What createPlainTransport answers and dump() shows."""
        info: dict[str, Any] = {
            "tuple": self._tuple(self.rtp_sock, self.remote),
            "comedia": self.comedia,
            "rtcpMux": self.rtcp_mux,
        }
        if self.rtcp_sock is not None:
            info["rtcpTuple"] = self._tuple(self.rtcp_sock, self.rtcp_remote)
        return info

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        loop = asyncio.get_running_loop()
        for sock in (self.rtp_sock, self.rtcp_sock):
            if sock is not None:
                loop.remove_reader(sock.fileno())
                sock.close()

    def get_stats(self) -> list[dict[str, Any]]:
        stats = super().get_stats()
        stats[0].update(self.info())
        return stats

    def dump(self) -> dict[str, Any]:
        return {**super().dump(), **self.info()}
