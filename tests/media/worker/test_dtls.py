"""DtlsSession: back-to-back handshakes over in-memory datagrams, and against aiortc."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import struct
from typing import Callable

import pytest
from aiortc.rtcdtlstransport import (
    SRTP_AEAD_AES_128_GCM,
    SRTP_AEAD_AES_256_GCM,
    SRTP_AES128_CM_SHA1_80,
    RTCCertificate,
    RTCDtlsFingerprint,
    RTCDtlsParameters,
    RTCDtlsTransport,
)
from cryptography.hazmat.primitives import serialization
from pylibsrtp import Policy, Session

from kolabmeet.media.worker.dtls import (
    MIN_MTU,
    SRTP_PROFILES,
    DtlsCertificate,
    DtlsError,
    DtlsSession,
    SrtpKeys,
    pack_datagrams,
    split_records,
    well_formed,
)

LIBSRTP_PROFILES = {
    "AEAD_AES_256_GCM": Policy.SRTP_PROFILE_AEAD_AES_256_GCM,
    "AEAD_AES_128_GCM": Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
    "AES_CM_128_HMAC_SHA1_80": Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}
AIORTC_PROFILES = {
    "AEAD_AES_256_GCM": SRTP_AEAD_AES_256_GCM,
    "AEAD_AES_128_GCM": SRTP_AEAD_AES_128_GCM,
    "AES_CM_128_HMAC_SHA1_80": SRTP_AES128_CM_SHA1_80,
}
KEY_LENGTHS = {
    "AEAD_AES_256_GCM": (32, 12),
    "AEAD_AES_128_GCM": (16, 12),
    "AES_CM_128_HMAC_SHA1_80": (16, 14),
    "AES_CM_128_HMAC_SHA1_32": (16, 14),
}
CERT_A = DtlsCertificate.generate()
CERT_B = DtlsCertificate.generate()
WAIT = 5.0

Drop = Callable[["Peer", bytes], bool]


class Peer:
    """A DtlsSession whose datagrams reach the other peer on the next loop turn."""

    def __init__(self, role: str, certificate: DtlsCertificate, remote: DtlsCertificate, drop: Drop, **kwargs) -> None:
        loop = asyncio.get_running_loop()
        self.connected: asyncio.Future[SrtpKeys] = loop.create_future()
        self.failed: asyncio.Future[str] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.events: list[str] = []
        self.sent: list[bytes] = []
        self.other: Peer | None = None
        self.drop = drop
        kwargs.setdefault("remote_fingerprint", remote.fingerprints[0])
        self.session = DtlsSession(
            certificate,
            role,
            send=self.send,
            on_connected=lambda keys: self.record(self.connected, "connected", keys),
            on_failed=lambda reason: self.record(self.failed, "failed", reason),
            on_closed=lambda: self.record(self.closed, "closed", None),
            **kwargs,
        )

    def record(self, future: asyncio.Future, event: str, value: object) -> None:
        self.events.append(event)
        future.set_result(value)

    def send(self, datagram: bytes) -> None:
        self.sent.append(datagram)
        if not self.drop(self, datagram):
            asyncio.get_running_loop().call_soon(self.other.session.receive, datagram)


def make_pair(drop: Drop = lambda peer, datagram: False, client: dict | None = None, server: dict | None = None):
    """A client on CERT_A and a server on CERT_B, wired back to back, started."""
    a = Peer("client", CERT_A, CERT_B, drop, **(client or {}))
    b = Peer("server", CERT_B, CERT_A, drop, **(server or {}))
    a.other, b.other = b, a
    b.session.start()
    a.session.start()
    return a, b


async def connect(drop: Drop = lambda peer, datagram: False, **kwargs) -> tuple[Peer, Peer, SrtpKeys, SrtpKeys]:
    a, b = make_pair(drop, **kwargs)
    keys_a, keys_b = await asyncio.wait_for(asyncio.gather(a.connected, b.connected), WAIT)
    return a, b, keys_a, keys_b


def records(datagram: bytes) -> list[bytes]:
    """Parse a datagram into DTLS records; assert nothing is cut or left over."""
    found = []
    offset = 0
    while offset < len(datagram):
        assert 20 <= datagram[offset] <= 63 and datagram[offset + 1] == 0xFE
        length = struct.unpack_from("!H", datagram, offset + 11)[0]
        assert offset + 13 + length <= len(datagram), "record cut across datagrams"
        found.append(datagram[offset : offset + 13 + length])
        offset += 13 + length
    return found


def rtp_packet(seq: int) -> bytes:
    return struct.pack("!BBHII", 0x80, 96, seq, seq * 960, 0x1234ABCD) + os.urandom(100)


def srtp_session(profile: str, key: bytes, salt: bytes, outbound: bool) -> Session:
    ssrc_type = Policy.SSRC_ANY_OUTBOUND if outbound else Policy.SSRC_ANY_INBOUND
    return Session(Policy(key=key + salt, ssrc_type=ssrc_type, srtp_profile=LIBSRTP_PROFILES[profile]))


def assert_srtp_works(sender: SrtpKeys, receiver: SrtpKeys) -> None:
    """What `sender` protects with its local key, `receiver` unprotects with its remote key."""
    tx = srtp_session(sender.profile, sender.local_key, sender.local_salt, outbound=True)
    rx = srtp_session(receiver.profile, receiver.remote_key, receiver.remote_salt, outbound=False)
    for seq in range(1, 4):
        packet = rtp_packet(seq)
        assert rx.unprotect(tx.protect(packet)) == packet


async def test_handshake_exports_mirrored_keys():
    a, b, keys_a, keys_b = await connect()
    assert a.session.state == b.session.state == "connected"
    assert keys_a.profile == keys_b.profile == "AEAD_AES_256_GCM"
    assert (keys_a.local_key, keys_a.local_salt) == (keys_b.remote_key, keys_b.remote_salt)
    assert (keys_a.remote_key, keys_a.remote_salt) == (keys_b.local_key, keys_b.local_salt)
    assert keys_a.local_key != keys_a.remote_key
    assert (len(keys_a.local_key), len(keys_a.local_salt)) == (32, 12)
    assert_srtp_works(keys_a, keys_b)
    assert_srtp_works(keys_b, keys_a)
    assert a.events == b.events == ["connected"]


@pytest.mark.parametrize("side", ["client", "server"])
@pytest.mark.parametrize("profile", SRTP_PROFILES)
async def test_profile_offered_alone_is_negotiated(profile, side):
    a, b, keys_a, keys_b = await connect(**{side: {"profiles": [profile]}})
    assert keys_a.profile == keys_b.profile == profile
    assert (len(keys_a.local_key), len(keys_a.local_salt)) == KEY_LENGTHS[profile]
    assert_srtp_works(keys_a, keys_b)
    assert_srtp_works(keys_b, keys_a)


async def test_server_preference_decides():
    offer = {"profiles": ["AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM"]}
    *_, keys, _ = await connect(client=offer)
    assert keys.profile == "AEAD_AES_128_GCM"
    *_, keys, _ = await connect(server=offer)
    assert keys.profile == "AES_CM_128_HMAC_SHA1_80"


@pytest.mark.parametrize("algorithm", ["sha-1", "sha-224", "sha-256", "sha-384", "sha-512"])
async def test_fingerprint_algorithms(algorithm):
    def fingerprint(certificate: DtlsCertificate) -> dict:
        return {"algorithm": algorithm.upper(), "value": certificate.fingerprint(algorithm).lower()}

    a, b, *_ = await connect(
        client={"remote_fingerprint": fingerprint(CERT_B)}, server={"remote_fingerprint": fingerprint(CERT_A)}
    )
    assert a.session.state == b.session.state == "connected"


def test_fingerprint_is_the_certificate_digest_in_colon_hex():
    der = CERT_A._certificate.public_bytes(serialization.Encoding.DER)
    expected = ":".join(f"{byte:02X}" for byte in hashlib.sha256(der).digest())
    assert CERT_A.fingerprint("sha-256") == CERT_A.fingerprint("SHA-256") == expected
    assert CERT_A.fingerprints == [{"algorithm": "sha-256", "value": expected}]
    assert len(CERT_A.fingerprint("sha-512")) == 64 * 3 - 1


@pytest.mark.parametrize("side", ["client", "server"])
async def test_fingerprint_mismatch_fails_without_keys(side):
    wrong = {"remote_fingerprint": DtlsCertificate.generate().fingerprints[0]}
    a, b = make_pair(**{side: wrong})
    checker, other = (a, b) if side == "client" else (b, a)
    assert await asyncio.wait_for(checker.failed, WAIT) == "fingerprint mismatch"
    assert checker.session.state == "failed"
    assert checker.events == ["failed"]
    # The other side finished its handshake, then got close_notify.
    await asyncio.wait_for(other.closed, WAIT)
    assert other.events == ["connected", "closed"]


@pytest.mark.parametrize(
    "fingerprint",
    [
        {"algorithm": "md5", "value": "00:11"},
        {"algorithm": "sha-256", "value": "zz"},
        {"algorithm": "sha-256", "value": "AB:CD"},
        {},
    ],
)
def test_bad_parameters_raise(fingerprint):
    with pytest.raises(DtlsError):
        DtlsSession(CERT_A, "client", fingerprint, print, print, print, print)


def test_bad_profile_role_or_mtu_raise():
    args = (CERT_A, "client", CERT_B.fingerprints[0], print, print, print, print)
    with pytest.raises(DtlsError):
        DtlsSession(*args, profiles=["NULL_HMAC_SHA1_80"])
    with pytest.raises(DtlsError):
        DtlsSession(*args, mtu=MIN_MTU - 1)
    with pytest.raises(DtlsError):
        DtlsSession(CERT_A, "auto", *args[2:])


def test_certificate_fingerprints():
    value = CERT_A.fingerprints[0]["value"]
    assert CERT_A.fingerprints == [{"algorithm": "sha-256", "value": value}]
    assert len(value) == 32 * 3 - 1 and value == value.upper() and value.count(":") == 31
    assert len(CERT_A.fingerprint("sha-512")) == 64 * 3 - 1
    assert CERT_A.fingerprint() != CERT_B.fingerprint()


async def test_lost_flights_are_retransmitted():
    first_flight_dropped: set[str] = set()

    def drop_first_flight_each_way(peer: Peer, datagram: bytes) -> bool:
        role = peer.session.role
        if role in first_flight_dropped and len(peer.sent) > 1:
            return False
        first_flight_dropped.add(role)
        return True

    a, b, keys_a, keys_b = await connect(drop_first_flight_each_way)
    assert first_flight_dropped == {"client", "server"}
    assert keys_a.local_key == keys_b.remote_key
    client_hellos = [d for d in a.sent if d[0] == 22 and d[13] == 1]
    assert len(client_hellos) == 2


async def test_lost_final_flight_is_resent_by_the_connected_server():
    dropped: list[bytes] = []

    def drop_server_finished_once(peer: Peer, datagram: bytes) -> bool:
        change_cipher_spec = any(record[0] == 20 for record in records(datagram))
        if peer.session.role == "server" and change_cipher_spec and not dropped:
            dropped.append(datagram)
            return True
        return False

    a, b, keys_a, keys_b = await connect(drop_server_finished_once)
    assert dropped and b.sent[-1] != dropped[0]  # the resent flight, with a new record sequence number
    assert keys_a.local_key == keys_b.remote_key


@pytest.mark.parametrize("mtu", [MIN_MTU, 300])
async def test_small_mtu_packs_whole_records(mtu):
    a, b, *_ = await connect(client={"mtu": mtu}, server={"mtu": mtu})
    for datagram in a.sent + b.sent:
        assert len(datagram) <= mtu
        assert b"".join(records(datagram)) == datagram
    # The server's flight (certificate included) needed several datagrams, some with several records.
    assert len(b.sent) > 2
    assert any(len(records(d)) > 1 for d in b.sent)


async def test_close_sends_close_notify():
    a, b, *_ = await connect()
    a.session.close()
    await asyncio.wait_for(b.closed, WAIT)
    assert b.session.state == a.session.state == "closed"
    sent = len(a.sent)
    a.session.close()
    b.session.close()
    assert len(a.sent) == sent
    assert a.events == ["connected"] and b.events == ["connected", "closed"]


async def test_close_while_connecting_stops_timers():
    a, b = make_pair(drop=lambda peer, datagram: True)
    await asyncio.sleep(0)
    a.session.close()
    assert a.session.state == "closed"
    assert a.session._timer is None and a.session._deadline is None


async def test_handshake_gives_up():
    a, b = make_pair(drop=lambda peer, datagram: True, client={"handshake_timeout": 1.3})
    assert await asyncio.wait_for(a.failed, WAIT) == "DTLS handshake timeout"
    assert a.session.state == "failed"
    assert len(a.sent) == 2  # the ClientHello, and its retransmission after 1 s
    assert b.session.state == "connecting"  # a server waits for a ClientHello


def garbage(rng: random.Random) -> list[bytes]:
    valid_header = bytes([22, 0xFE, 0xFD, 0, 0]) + bytes(6) + struct.pack("!H", 40)
    return [
        bytes([rng.randrange(20, 64)]) + rng.randbytes(rng.randrange(0, 200)),
        bytes([23]),
        valid_header + rng.randbytes(40),
        valid_header + rng.randbytes(10),
        bytes([23, 0xFE, 0xFD, 0, 1]) + bytes(6) + struct.pack("!H", 30) + rng.randbytes(30),
        bytes([21, 0xFE, 0xFD, 0, 1]) + bytes(6) + struct.pack("!H", 2) + b"\x02\x28",
        b"",
    ]


async def test_garbage_does_not_raise_or_break_the_handshake():
    rng = random.Random(5)

    def inject(peer: Peer, datagram: bytes) -> bool:
        for junk in garbage(rng):
            peer.other.session.receive(junk)
        return False

    a, b, keys_a, keys_b = await connect(inject)
    assert keys_a.local_key == keys_b.remote_key
    for _ in range(20):
        for junk in garbage(rng):
            a.session.receive(junk)
            b.session.receive(junk)
    assert a.session.state == b.session.state == "connected"
    assert a.events == b.events == ["connected"]


def test_record_helpers():
    def record(content_type: int, body: bytes) -> bytes:
        return bytes([content_type, 0xFE, 0xFD, 0, 0]) + bytes(6) + struct.pack("!H", len(body)) + body

    def fragment(length: int, offset: int, body: bytes) -> bytes:
        """A ClientHello fragment: type, length, message_seq, fragment offset and length, body."""
        sizes = length.to_bytes(3, "big") + bytes(2) + offset.to_bytes(3, "big") + len(body).to_bytes(3, "big")
        return bytes([1]) + sizes + body

    small, big = record(23, b"x" * 10), record(23, b"y" * 80)
    assert split_records(small + big + big[:20]) == [small, big]
    assert pack_datagrams([small, big, big, small], 200) == [small + big, big + small]
    assert pack_datagrams([big], 50) == [big]  # a record is never cut
    assert well_formed(small + big) and not well_formed(small + big[:20]) and not well_formed(b"")
    assert well_formed(record(22, fragment(8, 0, b"abcd") + fragment(8, 4, b"efgh")))
    assert not well_formed(record(22, fragment(8, 6, b"abcd")))  # beyond the message
    assert not well_formed(record(22, fragment(8, 0, b"abcd")[:-1]))  # beyond the record


async def test_receive_before_start_is_ignored():
    a = Peer("server", CERT_A, CERT_B, lambda peer, datagram: False)
    a.session.receive(bytes([22, 0xFE, 0xFF]) + bytes(20))
    assert a.session.state == "new" and a.sent == []


class DatagramPipe:
    """Stands in for aiortc's RTCIceTransport: RTCDtlsTransport uses only role, _send and _recv."""

    role = "controlled"

    def __init__(self, deliver: Callable[[bytes], None]) -> None:
        self.incoming: asyncio.Queue[bytes] = asyncio.Queue()
        self.deliver = deliver

    async def _send(self, data: bytes) -> None:
        asyncio.get_running_loop().call_soon(self.deliver, data)

    async def _recv(self) -> bytes:
        return await self.incoming.get()


@pytest.mark.parametrize("profile", list(AIORTC_PROFILES))
@pytest.mark.parametrize("our_role", ["client", "server"])
async def test_interop_with_aiortc(our_role, profile):
    loop = asyncio.get_running_loop()
    connected: asyncio.Future[SrtpKeys] = loop.create_future()
    closed: asyncio.Future[None] = loop.create_future()
    their_certificate = RTCCertificate.generateCertificate()
    fingerprint = their_certificate.getFingerprints()[0]
    ours = DtlsSession(
        CERT_A,
        our_role,
        {"algorithm": fingerprint.algorithm, "value": fingerprint.value},
        send=lambda data: pipe.incoming.put_nowait(data),
        on_connected=connected.set_result,
        on_failed=lambda reason: connected.set_exception(AssertionError(reason)),
        on_closed=lambda: closed.set_result(None),
    )
    pipe = DatagramPipe(ours.receive)
    theirs = RTCDtlsTransport(pipe, [their_certificate])
    theirs._set_role("server" if our_role == "client" else "client")
    theirs._srtp_profiles = [AIORTC_PROFILES[profile]]
    ours.start()
    remote = RTCDtlsParameters(fingerprints=[RTCDtlsFingerprint("sha-256", CERT_A.fingerprint())])
    await asyncio.wait_for(theirs.start(remote), WAIT)
    keys = await asyncio.wait_for(connected, WAIT)
    assert theirs.state == "connected" and keys.profile == profile

    packet = rtp_packet(7)
    tx = srtp_session(profile, keys.local_key, keys.local_salt, outbound=True)
    assert theirs._rx_srtp.unprotect(tx.protect(packet)) == packet
    rx = srtp_session(profile, keys.remote_key, keys.remote_salt, outbound=False)
    assert rx.unprotect(theirs._tx_srtp.protect(packet)) == packet

    await theirs._send_data(b"application data is ignored")
    await asyncio.sleep(0.01)
    assert ours.state == "connected"
    await theirs.stop()
    await asyncio.wait_for(closed, WAIT)
    assert ours.state == "closed"
