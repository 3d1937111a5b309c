"""The control process's handle on a WebRTC transport."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kolabmeet.media.transport import Transport

if TYPE_CHECKING:
    from kolabmeet.media.router import Router


class WebRtcTransport(Transport):
    """ICE-lite + DTLS-SRTP. Events: "icestatechange", "iceselectedtuplechange", "dtlsstatechange"."""

    def __init__(self, transport_id: str, router: "Router", info: dict[str, Any], app_data: Any = None) -> None:
        super().__init__(transport_id, router, app_data)
        self.ice_parameters: dict[str, Any] = info["iceParameters"]
        self.ice_candidates: list[dict[str, Any]] = info["iceCandidates"]
        self.dtls_parameters: dict[str, Any] = info["dtlsParameters"]
        self.ice_state: str = info["iceState"]
        self.ice_selected_tuple: dict[str, Any] | None = info["iceSelectedTuple"]
        self.dtls_state: str = info["dtlsState"]

    def _on_notification(self, event: str, data: Any) -> None:
        if event == "icestatechange":
            self.ice_state = data["iceState"]
            self.emit("icestatechange", self.ice_state)
        elif event == "iceselectedtuplechange":
            self.ice_selected_tuple = data["iceSelectedTuple"]
            self.emit("iceselectedtuplechange", self.ice_selected_tuple)
        elif event == "dtlsstatechange":
            self.dtls_state = data["dtlsState"]
            self.emit("dtlsstatechange", self.dtls_state, data.get("reason"))

    async def connect(self, dtls_parameters: dict[str, Any]) -> None:
        """Give the remote's DTLS role and fingerprints; the handshake starts once ICE is up."""
        self.check_open()
        await self.worker.request("transport.connect", self.id, {"dtlsParameters": dtls_parameters})

    async def restart_ice(self) -> dict[str, Any]:
        """New ICE credentials; media keeps flowing once the remote uses them."""
        self.check_open()
        self.ice_parameters = await self.worker.request("transport.restartIce", self.id)
        return self.ice_parameters
