"""The control process's handle on a plain RTP transport."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kolabmeet.media.transport import Transport

if TYPE_CHECKING:
    from kolabmeet.media.router import Router


class PlainTransport(Transport):
    """RTP/RTCP over UDP without ICE or DTLS. Events: "tuple", "rtcptuple" (comedia)."""

    def __init__(self, transport_id: str, router: "Router", info: dict[str, Any], app_data: Any = None) -> None:
        super().__init__(transport_id, router, app_data)
        self.tuple: dict[str, Any] = info["tuple"]
        self.rtcp_tuple: dict[str, Any] | None = info.get("rtcpTuple")
        self.comedia: bool = info["comedia"]
        self.rtcp_mux: bool = info["rtcpMux"]

    def _on_notification(self, event: str, data: Any) -> None:
        if event == "tuple":
            self.tuple = data["tuple"]
            self.emit("tuple", self.tuple)
        elif event == "rtcptuple":
            self.rtcp_tuple = data["rtcpTuple"]
            self.emit("rtcptuple", self.rtcp_tuple)

    async def connect(self, ip: str, port: int, rtcp_port: int | None = None) -> None:
        """Tell the worker where the remote receives RTP (and RTCP)."""
        self.check_open()
        await self.worker.request("transport.connect", self.id, {"ip": ip, "port": port, "rtcpPort": rtcp_port})
        self.tuple = {**self.tuple, "remoteIp": ip, "remotePort": port}
        if self.rtcp_tuple is not None and rtcp_port is not None:
            self.rtcp_tuple = {**self.rtcp_tuple, "remoteIp": ip, "remotePort": rtcp_port}
