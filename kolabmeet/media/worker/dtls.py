"""DTLS 1.2 for one WebRTC transport: handshake, fingerprint check, SRTP keys.

OpenSSL runs through pyOpenSSL on memory BIOs: incoming datagrams are written
into OpenSSL, whatever it writes back is cut into DTLS records and packed into
datagrams of at most ``mtu`` bytes.  Retransmissions follow OpenSSL's DTLS
timer on the running asyncio loop.  Keys are exported per RFC 5764 (use_srtp).
"""

from __future__ import annotations

import asyncio
import datetime
import hmac
import secrets
from dataclasses import dataclass
from typing import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from OpenSSL import SSL

from kolabmeet.media.errors import MediaError

HANDSHAKE_TIMEOUT = 30.0
# OpenSSL's smallest DTLS MTU: below it SSL_set_mtu is silently refused and,
# with OP_NO_QUERY_MTU, the first handshake write fails (OpenSSL 4.0).
MIN_MTU = 256

_DTLS1_VERSION = 0xFEFF
_DTLS1_2_VERSION = 0xFEFD
_RECORD_HEADER = 13
_FRAGMENT_HEADER = 12
_HANDSHAKE = 22
_EXPORTER_LABEL = b"EXTRACTOR-dtls_srtp"
_CIPHERS = b":".join(
    [
        b"ECDHE-ECDSA-AES128-GCM-SHA256",
        b"ECDHE-ECDSA-AES256-GCM-SHA384",
        b"ECDHE-ECDSA-CHACHA20-POLY1305",
        b"ECDHE-RSA-AES128-GCM-SHA256",
        b"ECDHE-RSA-AES256-GCM-SHA384",
        b"ECDHE-RSA-CHACHA20-POLY1305",
        b"ECDHE-ECDSA-AES128-SHA",
        b"ECDHE-ECDSA-AES256-SHA",
        b"ECDHE-RSA-AES128-SHA",
        b"ECDHE-RSA-AES256-SHA",
    ]
)
_DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    "sha-1": hashes.SHA1,
    "sha-224": hashes.SHA224,
    "sha-256": hashes.SHA256,
    "sha-384": hashes.SHA384,
    "sha-512": hashes.SHA512,
}


@dataclass(frozen=True)
class _Profile:
    name: str
    openssl_name: bytes
    key_length: int
    salt_length: int


_PROFILES = {
    p.name: p
    for p in (
        _Profile("AEAD_AES_256_GCM", b"SRTP_AEAD_AES_256_GCM", 32, 12),
        _Profile("AEAD_AES_128_GCM", b"SRTP_AEAD_AES_128_GCM", 16, 12),
        _Profile("AES_CM_128_HMAC_SHA1_80", b"SRTP_AES128_CM_SHA1_80", 16, 14),
        _Profile("AES_CM_128_HMAC_SHA1_32", b"SRTP_AES128_CM_SHA1_32", 16, 14),
    )
}
_BY_OPENSSL_NAME = {p.openssl_name: p for p in _PROFILES.values()}

SRTP_PROFILES: list[str] = list(_PROFILES)
"""mediasoup names of the SRTP profiles, most preferred first."""


class DtlsError(MediaError):
    """Bad DTLS parameters (fingerprint, profile, MTU)."""


def _digest(certificate: x509.Certificate, algorithm: str) -> bytes:
    """The certificate's fingerprint as raw bytes; DtlsError if unsupported."""
    digest = _DIGESTS.get(algorithm.lower())
    if digest is None:
        raise DtlsError(f"unsupported fingerprint algorithm {algorithm!r}")
    return certificate.fingerprint(digest())


def _accept_any_certificate(*_: object) -> bool:
    """OpenSSL verify callback: self-signed is fine, the fingerprint decides."""
    return True


class DtlsCertificate:
    """A key and self-signed certificate, shared by the transports of a worker."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate) -> None:
        self._key = key
        self._certificate = certificate
        self._contexts: dict[tuple[str, ...], SSL.Context] = {}
        self._fingerprints: dict[str, str] = {}

    @classmethod
    def generate(cls) -> DtlsCertificate:
        """A fresh ECDSA P-256 key and certificate, random CN, valid +/- 30 days."""
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, secrets.token_hex(8))])
        now = datetime.datetime.now(datetime.timezone.utc)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=30))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    @property
    def fingerprints(self) -> list[dict[str, str]]:
        """The fingerprints to announce in dtlsParameters (sha-256)."""
        return [{"algorithm": "sha-256", "value": self.fingerprint("sha-256")}]

    def fingerprint(self, algorithm: str = "sha-256") -> str:
        """Fingerprint as uppercase hex pairs joined by colons (computed once per algorithm: every
        transport announces it)."""
        fingerprint = self._fingerprints.get(algorithm)
        if fingerprint is None:
            fingerprint = self._fingerprints[algorithm] = _digest(self._certificate, algorithm).hex(":").upper()
        return fingerprint

    def context(self, profiles: tuple[str, ...]) -> SSL.Context:
        """The OpenSSL context for these SRTP profiles (made once, then shared)."""
        context = self._contexts.get(profiles)
        if context is None:
            context = self._contexts[profiles] = self._new_context(profiles)
        return context

    def _new_context(self, profiles: tuple[str, ...]) -> SSL.Context:
        context = SSL.Context(SSL.DTLS_METHOD)
        context.set_min_proto_version(_DTLS1_VERSION)
        context.set_max_proto_version(_DTLS1_2_VERSION)
        context.set_options(SSL.OP_NO_TICKET | SSL.OP_NO_QUERY_MTU | SSL.OP_NO_RENEGOTIATION)
        context.set_session_cache_mode(SSL.SESS_CACHE_OFF)
        context.set_cipher_list(_CIPHERS)
        context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, _accept_any_certificate)
        context.use_certificate(self._certificate)
        context.use_privatekey(self._key)
        context.set_tlsext_use_srtp(b":".join(_PROFILES[name].openssl_name for name in profiles))
        return context


@dataclass
class SrtpKeys:
    """SRTP master keys and salts of one DTLS association."""

    profile: str
    local_key: bytes
    local_salt: bytes
    remote_key: bytes
    remote_salt: bytes


def split_records(data: bytes) -> list[bytes]:
    """Cut a byte string into whole DTLS records; a truncated tail is dropped."""
    records = []
    offset = 0
    while offset + _RECORD_HEADER <= len(data):
        end = offset + _RECORD_HEADER + int.from_bytes(data[offset + 11 : offset + 13], "big")
        if end > len(data):
            break
        records.append(data[offset:end])
        offset = end
    return records


def pack_datagrams(records: list[bytes], mtu: int) -> list[bytes]:
    """Pack whole records, in order, into as few datagrams of <= mtu bytes as fit."""
    datagrams: list[bytes] = []
    current = b""
    for record in records:
        if current and len(current) + len(record) > mtu:
            datagrams.append(current)
            current = b""
        current += record
    if current:
        datagrams.append(current)
    return datagrams


def well_formed(datagram: bytes) -> bool:
    """True if the datagram is whole DTLS records whose plaintext handshake
    fragments are framed consistently (OpenSSL aborts the handshake on those)."""
    if not datagram:
        return False
    offset = 0
    while offset < len(datagram):
        if offset + _RECORD_HEADER > len(datagram):
            return False
        end = offset + _RECORD_HEADER + int.from_bytes(datagram[offset + 11 : offset + 13], "big")
        if end > len(datagram):
            return False
        plaintext = datagram[offset + 3 : offset + 5] == b"\0\0"  # epoch 0
        if datagram[offset] == _HANDSHAKE and plaintext and not _fragments_fit(datagram, offset + _RECORD_HEADER, end):
            return False
        offset = end
    return True


def _fragments_fit(data: bytes, offset: int, end: int) -> bool:
    """True if data[offset:end] is a run of handshake fragments that fit their messages."""
    while offset < end:
        if offset + _FRAGMENT_HEADER > end:
            return False
        message_length = int.from_bytes(data[offset + 1 : offset + 4], "big")
        fragment_offset = int.from_bytes(data[offset + 6 : offset + 9], "big")
        fragment_length = int.from_bytes(data[offset + 9 : offset + 12], "big")
        offset += _FRAGMENT_HEADER + fragment_length
        if fragment_offset + fragment_length > message_length or offset > end:
            return False
    return True


def _parse_fingerprint(fingerprint: dict) -> tuple[str, bytes]:
    """(algorithm, digest bytes) of a dtlsParameters fingerprint; DtlsError if bad."""
    algorithm = str(fingerprint.get("algorithm", "")).lower()
    digest = _DIGESTS.get(algorithm)
    if digest is None:
        raise DtlsError(f"unsupported fingerprint algorithm {algorithm!r}")
    try:
        value = bytes.fromhex(str(fingerprint.get("value", "")).replace(":", ""))
    except ValueError:
        raise DtlsError("invalid fingerprint value") from None
    if len(value) != digest.digest_size:
        raise DtlsError("invalid fingerprint value")
    return algorithm, value


def _check_profiles(profiles: list[str] | None) -> tuple[str, ...]:
    """The profiles to offer, validated; all of SRTP_PROFILES by default."""
    chosen = tuple(SRTP_PROFILES if profiles is None else profiles)
    unknown = [name for name in chosen if name not in _PROFILES]
    if unknown or not chosen:
        raise DtlsError(f"unsupported SRTP profiles {unknown or chosen!r}")
    return chosen


class DtlsSession:
    """One DTLS association (client or server) over a datagram ``send`` callback.

    ``state`` goes new -> connecting -> connected, and ends in failed or closed.
    ``receive()`` before ``start()`` is ignored.
    """

    def __init__(
        self,
        certificate: DtlsCertificate,
        role: str,
        remote_fingerprint: dict,
        send: Callable[[bytes], None],
        on_connected: Callable[[SrtpKeys], None],
        on_failed: Callable[[str], None],
        on_closed: Callable[[], None],
        mtu: int = 1200,
        profiles: list[str] | None = None,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
    ) -> None:
        if role not in ("client", "server"):
            raise DtlsError(f"invalid DTLS role {role!r}")
        if mtu < MIN_MTU:
            raise DtlsError(f"DTLS MTU {mtu} is below {MIN_MTU}")
        self._remote_algorithm, self._remote_digest = _parse_fingerprint(remote_fingerprint)
        self.role = role
        self.state = "new"
        self._send = send
        self._on_connected = on_connected
        self._on_failed = on_failed
        self._on_closed = on_closed
        self._mtu = mtu
        self._handshake_timeout = handshake_timeout
        self._timer: asyncio.TimerHandle | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._ssl = SSL.Connection(certificate.context(_check_profiles(profiles)), None)
        self._ssl.set_ciphertext_mtu(mtu)

    def start(self) -> None:
        """Begin the handshake: a client sends its ClientHello, a server waits."""
        if self.state != "new":
            return
        self.state = "connecting"
        if self.role == "client":
            self._ssl.set_connect_state()
            self._handshake()
        else:
            self._ssl.set_accept_state()

    def receive(self, data: bytes) -> None:
        """Feed one incoming DTLS datagram; malformed ones are dropped, never raised."""
        if self.state not in ("connecting", "connected") or not well_formed(data):
            return
        self._ssl.bio_write(data)
        if self.state == "connecting":
            self._handshake()
        else:
            self._read_records()

    def close(self) -> None:
        """Send close_notify if connected, stop the timers; idempotent."""
        if self.state == "closed":
            return
        if self.state == "connected":
            self._shutdown()
        self._stop_timers()
        self.state = "closed"

    def _handshake(self) -> None:
        """Advance the handshake with what OpenSSL has received so far."""
        try:
            self._ssl.do_handshake()
        except SSL.WantReadError:
            self._flush()
            self._arm_timer()
            return
        except SSL.Error as error:
            self._flush()
            self._fail(f"DTLS handshake failed: {_reason(error)}")
            return
        self._flush()
        self._stop_timers()
        self._handshake_done()

    def _handshake_done(self) -> None:
        """Check the peer's fingerprint, export the keys, report connected."""
        if not self._peer_matches():
            self._shutdown()
            self._fail("fingerprint mismatch")
            return
        keys = self._srtp_keys()
        if keys is None:
            self._shutdown()
            self._fail("no SRTP profile negotiated")
            return
        self.state = "connected"
        self._on_connected(keys)

    def _peer_matches(self) -> bool:
        """Constant-time comparison of the peer certificate with the fingerprint."""
        certificate = self._ssl.get_peer_certificate(as_cryptography=True)
        if certificate is None:
            return False
        return hmac.compare_digest(_digest(certificate, self._remote_algorithm), self._remote_digest)

    def _srtp_keys(self) -> SrtpKeys | None:
        """Split the exported keying material (RFC 5764 4.2) into ours and theirs."""
        profile = _BY_OPENSSL_NAME.get(self._ssl.get_selected_srtp_profile())
        if profile is None:
            return None
        key, salt = profile.key_length, profile.salt_length
        material = self._ssl.export_keying_material(_EXPORTER_LABEL, 2 * (key + salt))
        client = (material[:key], material[2 * key : 2 * key + salt])
        server = (material[key : 2 * key], material[2 * key + salt :])
        local, remote = (client, server) if self.role == "client" else (server, client)
        return SrtpKeys(profile.name, local[0], local[1], remote[0], remote[1])

    def _read_records(self) -> None:
        """After the handshake: drop application data, notice close_notify."""
        try:
            while True:
                self._ssl.recv(65536)
        except SSL.WantReadError:
            self._flush()
        except SSL.Error:
            # close_notify (ZeroReturnError) or a fatal alert: the association is over.
            self._stop_timers()
            self.state = "closed"
            self._on_closed()

    def _shutdown(self) -> None:
        """Queue and send close_notify."""
        try:
            self._ssl.shutdown()
        except SSL.Error:
            pass
        self._flush()

    def _flush(self) -> None:
        """Send what OpenSSL wrote, as whole records packed into datagrams <= mtu."""
        chunks = []
        while True:
            try:
                chunks.append(self._ssl.bio_read(65536))
            except SSL.WantReadError:
                break
        if chunks:
            for datagram in pack_datagrams(split_records(b"".join(chunks)), self._mtu):
                self._send(datagram)

    def _arm_timer(self) -> None:
        """Follow OpenSSL's retransmission timer; start the give-up deadline once."""
        self._cancel_timer()
        timeout = self._ssl.DTLSv1_get_timeout()
        if timeout is None:
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(timeout, self._retransmit)
        if self._deadline is None:
            self._deadline = loop.call_later(self._handshake_timeout, self._fail, "DTLS handshake timeout")

    def _retransmit(self) -> None:
        """OpenSSL's timer expired: let it resend its last flight."""
        self._timer = None
        try:
            self._ssl.DTLSv1_handle_timeout()
        except SSL.Error:
            self._flush()
            self._fail("DTLS handshake timeout")
            return
        self._flush()
        self._arm_timer()

    def _fail(self, reason: str) -> None:
        """Enter failed (once) and tell the owner why."""
        if self.state in ("failed", "closed"):
            return
        self._stop_timers()
        self.state = "failed"
        self._on_failed(reason)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _stop_timers(self) -> None:
        self._cancel_timer()
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None


def _reason(error: SSL.Error) -> str:
    """The last OpenSSL reason string of an error, or its text."""
    details = error.args[0] if error.args else None
    if isinstance(details, list) and details and isinstance(details[-1], tuple):
        return str(details[-1][-1])
    return str(error) or type(error).__name__
