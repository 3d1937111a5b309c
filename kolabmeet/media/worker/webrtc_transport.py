"""WebRTC transport: ICE-lite on the worker's shared port, DTLS, then SRTP both ways."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from kolabmeet.media.errors import MediaError
from kolabmeet.media.worker.dtls import DtlsCertificate, DtlsSession, SrtpKeys
from kolabmeet.media.worker.ice import IceLite
from kolabmeet.media.worker.pacer import Pacer
from kolabmeet.media.worker.send import protect_into
from kolabmeet.media.worker.srtp import SrtpSession
from kolabmeet.media.worker.transport import RECV, SEND, Notify, Transport
from kolabmeet.media.worker.tuple import Tuple
from kolabmeet.media.worker.webrtc_server import WebRtcServer

if TYPE_CHECKING:
    from kolabmeet.media.worker.router import Router

MAX_EARLY_DTLS = 8
FINGERPRINT_ALGORITHMS = ("sha-256", "sha-384", "sha-512", "sha-224", "sha-1")


class WebRtcTransport(Transport):
    """A browser's (or any WebRTC peer's) media connection."""

    kind_name = "webrtc-transport"

    def __init__(self, transport_id: str, router: "Router", notify: Notify, server: WebRtcServer,
                 certificate: DtlsCertificate, data: dict[str, Any]) -> None:
        super().__init__(transport_id, router, notify)
        self.server = server
        self.certificate = certificate
        self.enable_udp = bool(data.get("enableUdp", True))
        self.enable_tcp = bool(data.get("enableTcp", True))
        self.prefer_udp = bool(data.get("preferUdp", True))
        self.max_incoming_bitrate: int | None = data.get("maxIncomingBitrate")
        self.ice = IceLite(self._on_ice_state, self._on_selected_tuple, self.server.forget_tuple)
        self.dtls: DtlsSession | None = None
        self.dtls_state = "new"
        self.dtls_role = "auto"
        self.srtp_profile: str | None = None
        self._early_dtls: list[bytes] = []
        self._srtp_in: SrtpSession | None = None
        self._srtp_out: SrtpSession | None = None
        self._tuple: Tuple | None = None
        server.register(self)

    def info(self) -> dict[str, Any]:
        """What createWebRtcTransport answers, plus states."""
        return {
            "iceParameters": self.ice.parameters(),
            "iceCandidates": self.server.candidates(self.enable_udp, self.enable_tcp, self.prefer_udp),
            "dtlsParameters": {"role": "auto", "fingerprints": self.certificate.fingerprints},
            "iceState": self.ice.state,
            "iceSelectedTuple": self._tuple.as_dict() if self._tuple else None,
            "dtlsState": self.dtls_state,
        }

    def connect(self, data: dict[str, Any]) -> None:
        """The remote's DTLS parameters: our role is the opposite of its role."""
        self.check_open()
        if self.dtls is not None:
            raise MediaError("connect() already called")
        params = data.get("dtlsParameters")
        if not isinstance(params, dict):
            raise MediaError("dtlsParameters must be an object")
        remote_role = params.get("role", "auto")
        if remote_role not in ("auto", "client", "server"):
            raise MediaError("dtlsParameters.role must be auto, client or server")
        self.dtls_role = "server" if remote_role == "client" else "client"
        self.dtls = DtlsSession(self.certificate, self.dtls_role, _pick_fingerprint(params.get("fingerprints")),
                                send=self._send_dtls, on_connected=self._on_dtls_connected,
                                on_failed=self._on_dtls_failed, on_closed=self._on_dtls_closed)
        self._start_dtls()

    def restart_ice(self) -> dict[str, Any]:
        self.check_open()
        old = self.ice.ufrag
        self.ice.restart()
        self.server.unregister(self, old)
        self.server.register(self)
        return self.ice.parameters()

    def _start_dtls(self) -> None:
        if self.dtls is None or self._tuple is None or self.dtls.state != "new":
            return
        self._set_dtls_state("connecting")
        self.dtls.start()
        early, self._early_dtls = self._early_dtls, []
        for datagram in early:
            self.dtls.receive(datagram)

    def receive_dtls(self, data: bytes) -> None:
        if self.dtls is None or self.dtls.state == "new":
            if len(self._early_dtls) < MAX_EARLY_DTLS:
                self._early_dtls.append(data)
            return
        self.dtls.receive(data)

    def receive_srtp(self, buf: bytearray, length: int) -> None:
        """Hot path: decrypt in place, then RTP to its producer or RTCP to feedback handling."""
        srtp = self._srtp_in
        if srtp is None or length < 12:
            return
        if 192 <= buf[1] <= 223:
            length = srtp.unprotect_rtcp(RECV, length)
            if length > 0:
                self.receive_rtcp(buf, length)
            return
        length = srtp.unprotect_rtp(RECV, length)
        if length > 0:
            self.receive_rtp(buf, length)

    def send_rtp(self, view: memoryview, ext_map: bytes | None = None, priority: int = 1,
                 paced: bool = True, now: float = 0.0, twcc_seq: int = -1) -> bool:
        """Hot path: copy into the send buffer, map extension ids, encrypt in place, send (or queue)."""
        srtp, tuple_ = self._srtp_out, self._tuple
        if srtp is None or tuple_ is None:
            return False
        video = priority < 255
        pacer = self.pacer
        held = video and paced and pacer is not None and not pacer.clear_to_send(len(view) + srtp.trailer,
                                                                                 now or time.monotonic())
        sender = tuple_.sender
        if sender is not None and not held:
            length = sender.send_srtp(srtp, SEND, view, ext_map)
            if length < 0:
                return False
        else:
            length = protect_into(srtp, SEND, view, ext_map)
            if length < 0:
                return False
            if held:
                pacer.hold(SEND.view[:length], twcc_seq, video)
            elif not tuple_.send(SEND.view[:length], video):
                return False
        self.bytes_sent += length
        return True

    def make_pacer(self) -> Pacer:
        return Pacer(self._send_paced, self.estimator.history.sent,
                     max(self.estimator.bitrate, self.allocated_bitrate))

    def _send_paced(self, datagram: bytes, droppable: bool) -> bool:
        tuple_ = self._tuple
        return tuple_ is not None and self._srtp_out is not None and tuple_.send(datagram, droppable)

    def send_rtcp(self, data: bytes) -> None:
        srtp, tuple_ = self._srtp_out, self._tuple
        if srtp is None or tuple_ is None:
            return
        protected = srtp.protect_rtcp_bytes(data)
        if protected is not None and tuple_.send(protected):
            self.bytes_sent += len(protected)

    def can_send(self) -> bool:
        return self._srtp_out is not None and self._tuple is not None and not self.closed

    def _send_dtls(self, data: bytes) -> None:
        if self._tuple is not None:
            self._tuple.send(data)

    def _on_ice_state(self, state: str) -> None:
        self.notify(self.id, "icestatechange", {"iceState": state})
        self.state_changed()

    def _on_selected_tuple(self, tuple_: Tuple) -> None:
        self.server.give_socket(tuple_)
        self._tuple = tuple_
        self.notify(self.id, "iceselectedtuplechange", {"iceSelectedTuple": tuple_.as_dict()})
        self._start_dtls()
        self.state_changed()

    def _on_dtls_connected(self, keys: SrtpKeys) -> None:
        try:
            self._srtp_in = SrtpSession(keys.profile, keys.remote_key, keys.remote_salt, outbound=False)
            self._srtp_out = SrtpSession(keys.profile, keys.local_key, keys.local_salt, outbound=True)
        except MediaError as exc:
            self._on_dtls_failed(f"SRTP setup failed: {exc}")
            return
        self.srtp_profile = keys.profile
        self._set_dtls_state("connected")
        self.state_changed()

    def _on_dtls_failed(self, reason: str) -> None:
        self._set_dtls_state("failed", reason)
        self._drop_srtp()

    def _on_dtls_closed(self) -> None:
        self._set_dtls_state("closed")
        self._drop_srtp()

    def _drop_srtp(self) -> None:
        for session in (self._srtp_in, self._srtp_out):
            if session is not None:
                session.close()
        self._srtp_in = self._srtp_out = None
        self.state_changed()

    def _set_dtls_state(self, state: str, reason: str | None = None) -> None:
        self.dtls_state = state
        data: dict[str, Any] = {"dtlsState": state}
        if reason:
            data["reason"] = reason
        self.notify(self.id, "dtlsstatechange", data)

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        if self.dtls is not None:
            self.dtls.close()
        self.server.unregister(self)
        self.ice.close()
        if self.pacer is not None:
            self.pacer.close()
        self._tuple = None
        self._drop_srtp()

    def get_stats(self) -> list[dict[str, Any]]:
        stats = super().get_stats()
        stats[0].update(iceRole="controlled", iceState=self.ice.state, dtlsState=self.dtls_state,
                        iceSelectedTuple=self._tuple.as_dict() if self._tuple else None,
                        srtpProfile=self.srtp_profile, **_pacer_stats(self.pacer))
        return stats

    def dump(self) -> dict[str, Any]:
        return {**super().dump(), **self.info(), "dtlsRole": self.dtls_role, "srtpProfile": self.srtp_profile}


def _pacer_stats(pacer: Pacer | None) -> dict[str, Any]:
    if pacer is None:
        return {"pacingBitrate": None, "pacerQueue": 0, "packetsPaced": 0}
    return {"pacingBitrate": int(pacer.rate * 8), "pacerQueue": pacer.queued, "packetsPaced": pacer.sent_late}


def _pick_fingerprint(fingerprints: Any) -> dict[str, str]:
    """The strongest fingerprint the remote gave."""
    if not isinstance(fingerprints, list) or not fingerprints:
        raise MediaError("dtlsParameters.fingerprints must be a non-empty list")
    by_algorithm = {f.get("algorithm"): f for f in fingerprints
                    if isinstance(f, dict) and isinstance(f.get("value"), str)}
    for algorithm in FINGERPRINT_ALGORITHMS:
        if algorithm in by_algorithm:
            return by_algorithm[algorithm]
    raise MediaError("dtlsParameters.fingerprints has no supported algorithm (sha-1 .. sha-512)")
