import os
import struct
import sys

import pylibsrtp
import pytest

from kolabmeet.media.errors import MediaError
from kolabmeet.media.worker.srtp import (
    MAX_TRAILER,
    PROFILES,
    PacketBuffer,
    SrtpError,
    SrtpSession,
)

# (libsrtp profile, key length, salt length): pylibsrtp is the independent oracle.
ORACLE = {
    "AEAD_AES_256_GCM": (pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM, 32, 12),
    "AEAD_AES_128_GCM": (pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM, 16, 12),
    "AES_CM_128_HMAC_SHA1_80": (pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 16, 14),
    "AES_CM_128_HMAC_SHA1_32": (pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32, 16, 14),
}


def keys(profile):
    _, key_len, salt_len = ORACLE[profile]
    return os.urandom(key_len), os.urandom(salt_len)


def oracle(profile, key, salt, outbound):
    srtp_profile = ORACLE[profile][0]
    ssrc_type = pylibsrtp.Policy.SSRC_ANY_OUTBOUND if outbound else pylibsrtp.Policy.SSRC_ANY_INBOUND
    policy = pylibsrtp.Policy(key=key + salt, ssrc_type=ssrc_type, srtp_profile=srtp_profile)
    return pylibsrtp.Session(policy)


def rtp(seq, ssrc=0x11223344, size=1116):
    header = struct.pack("!BBHII", 0x80, 96, seq & 0xFFFF, seq * 3000 & 0xFFFFFFFF, ssrc)
    return header + bytes((seq + i) & 0xFF for i in range(size - len(header)))


def rtcp(ssrc=0x11223344, extra=0):
    # Receiver report with one report block, optionally followed by an APP packet.
    rr = struct.pack("!BBHI", 0x81, 201, 7, ssrc) + struct.pack("!IIIIII", 0xCAFEBABE, 5, 1000, 20, 0, 0)
    if extra:
        app = struct.pack("!BBHI4s", 0x80, 204, 2 + extra // 4, ssrc, b"test") + bytes(i & 0xFF for i in range(extra))
        rr += app
    return rr


def load(buf, packet):
    buf.data[: len(packet)] = packet
    return len(packet)


@pytest.fixture(params=PROFILES)
def profile(request):
    return request.param


def test_profiles_and_constants():
    assert PROFILES == ("AEAD_AES_256_GCM", "AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")
    assert MAX_TRAILER == 20
    assert issubclass(SrtpError, MediaError)


def test_packet_buffer():
    buf = PacketBuffer()
    assert len(buf.data) == 65536 and len(buf.view) == 65536 and len(buf) == 65536
    assert buf.size == 65536 and buf.limit == 65536 - MAX_TRAILER
    with pytest.raises(BufferError):  # the pointer can never dangle
        buf.data.extend(b"x")
    small = PacketBuffer(1500)
    assert small.limit == 1480
    with pytest.raises(SrtpError):
        PacketBuffer(MAX_TRAILER)


def test_rtp_ours_to_oracle_and_back(profile):
    key, salt = keys(profile)
    ours_out = SrtpSession(profile, key, salt, outbound=True)
    ours_in = SrtpSession(profile, key, salt, outbound=False)
    their_out = oracle(profile, key, salt, outbound=True)
    their_in = oracle(profile, key, salt, outbound=False)
    buf = PacketBuffer()
    for seq in (65530, 65531, 65535, 0, 1, 2):  # across a rollover
        packet = rtp(seq)
        n = ours_out.protect_rtp(buf, load(buf, packet))
        assert len(packet) < n <= len(packet) + MAX_TRAILER
        protected = bytes(buf.view[:n])
        assert protected != packet and protected[:12] == packet[:12]
        assert their_in.unprotect(protected) == packet

        protected = their_out.protect(packet)
        n = ours_in.unprotect_rtp(buf, load(buf, protected))
        assert n == len(packet)
        assert bytes(buf.view[:n]) == packet


def test_rtcp_ours_to_oracle_and_back(profile):
    key, salt = keys(profile)
    ours_out = SrtpSession(profile, key, salt, outbound=True)
    ours_in = SrtpSession(profile, key, salt, outbound=False)
    their_out = oracle(profile, key, salt, outbound=True)
    their_in = oracle(profile, key, salt, outbound=False)
    buf = PacketBuffer()
    for extra in (0, 4, 100, 1000):
        packet = rtcp(extra=extra)
        n = ours_out.protect_rtcp(buf, load(buf, packet))
        assert len(packet) + 4 < n <= len(packet) + MAX_TRAILER
        assert their_in.unprotect_rtcp(bytes(buf.view[:n])) == packet

        protected = their_out.protect_rtcp(packet)
        n = ours_in.unprotect_rtcp(buf, load(buf, protected))
        assert bytes(buf.view[:n]) == packet

        protected = ours_out.protect_rtcp_bytes(packet)
        assert isinstance(protected, bytes)
        assert their_in.unprotect_rtcp(protected) == packet


def test_ours_to_ours_and_trailer_bound(profile):
    key, salt = keys(profile)
    out = SrtpSession(profile, key, salt, outbound=True)
    inb = SrtpSession(profile, key, salt, outbound=False)
    buf = PacketBuffer(1500)
    packet = rtp(7, size=1500 - MAX_TRAILER)  # largest packet the buffer accepts
    buf.data[:] = b"\xa5" * 1500
    n = out.protect_rtp(buf, load(buf, packet))
    assert n <= 1500
    assert buf.data[n:] == b"\xa5" * (1500 - n)  # nothing written beyond the trailer
    assert inb.unprotect_rtp(buf, n) == len(packet)
    assert bytes(buf.view[: len(packet)]) == packet

    report = rtcp(extra=8)
    n = out.protect_rtcp(buf, load(buf, report))
    assert inb.unprotect_rtcp(buf, n) == len(report)
    assert bytes(buf.view[: len(report)]) == report


def test_tampered_packets_fail(profile):
    key, salt = keys(profile)
    out = SrtpSession(profile, key, salt, outbound=True)
    inb = SrtpSession(profile, key, salt, outbound=False)
    buf = PacketBuffer()
    for seq, offset in ((1, 100), (2, -1), (3, 5)):  # payload, tag, header
        n = out.protect_rtp(buf, load(buf, rtp(seq)))
        buf.data[offset if offset >= 0 else n - 1] ^= 0x01
        assert inb.unprotect_rtp(buf, n) == -1
    n = out.protect_rtp(buf, load(buf, rtp(4)))
    assert inb.unprotect_rtp(buf, n) == len(rtp(4))  # the stream still works

    for offset in (10, -1):
        n = out.protect_rtcp(buf, load(buf, rtcp()))
        buf.data[offset if offset >= 0 else n - 1] ^= 0x80
        assert inb.unprotect_rtcp(buf, n) == -1

    # A packet protected with another key.
    other = SrtpSession(profile, *keys(profile), outbound=True)
    n = other.protect_rtp(buf, load(buf, rtp(5)))
    assert inb.unprotect_rtp(buf, n) == -1


def test_replay_rejected_inbound(profile):
    key, salt = keys(profile)
    out = SrtpSession(profile, key, salt, outbound=True)
    inb = SrtpSession(profile, key, salt, outbound=False)
    buf = PacketBuffer()
    n = out.protect_rtp(buf, load(buf, rtp(100)))
    protected = bytes(buf.view[:n])
    assert inb.unprotect_rtp(buf, load(buf, protected)) == len(rtp(100))
    assert inb.unprotect_rtp(buf, load(buf, protected)) == -1

    n = out.protect_rtcp(buf, load(buf, rtcp()))
    protected = bytes(buf.view[:n])
    assert inb.unprotect_rtcp(buf, load(buf, protected)) == len(rtcp())
    assert inb.unprotect_rtcp(buf, load(buf, protected)) == -1

    # Within the 1024-packet window, reordering is fine; far behind it is rejected.
    late = []
    for seq in range(101, 1300):
        n = out.protect_rtp(buf, load(buf, rtp(seq)))
        if seq in (102, 400):
            late.append(bytes(buf.view[:n]))
        else:
            assert inb.unprotect_rtp(buf, n) > 0
    assert inb.unprotect_rtp(buf, load(buf, late[1])) == len(rtp(400))  # 899 behind the newest
    assert inb.unprotect_rtp(buf, load(buf, late[0])) == -1  # 1197 behind


def test_outbound_allows_repeated_sequence_numbers(profile):
    key, salt = keys(profile)
    out = SrtpSession(profile, key, salt, outbound=True)
    their_in = oracle(profile, key, salt, outbound=False)
    buf = PacketBuffer()
    first = out.protect_rtp(buf, load(buf, rtp(9)))
    first_bytes = bytes(buf.view[:first])
    again = out.protect_rtp(buf, load(buf, rtp(9)))  # a retransmission
    assert bytes(buf.view[:again]) == first_bytes
    assert their_in.unprotect(first_bytes) == rtp(9)


def test_several_ssrcs_one_session(profile):
    key, salt = keys(profile)
    ours_out = SrtpSession(profile, key, salt, outbound=True)
    ours_in = SrtpSession(profile, key, salt, outbound=False)
    their_out = oracle(profile, key, salt, outbound=True)
    their_in = oracle(profile, key, salt, outbound=False)
    buf = PacketBuffer()
    ssrcs = (1, 0xDEADBEEF, 0x12345678)
    for seq in range(40):
        for ssrc in ssrcs:  # same sequence numbers on every SSRC: separate replay state
            packet = rtp(seq, ssrc=ssrc, size=200)
            n = ours_out.protect_rtp(buf, load(buf, packet))
            assert their_in.unprotect(bytes(buf.view[:n])) == packet
            n = ours_in.unprotect_rtp(buf, load(buf, their_out.protect(packet)))
            assert bytes(buf.view[:n]) == packet
        for ssrc in ssrcs:
            report = rtcp(ssrc=ssrc)
            n = ours_out.protect_rtcp(buf, load(buf, report))
            assert their_in.unprotect_rtcp(bytes(buf.view[:n])) == report


def test_bad_parameters(profile):
    _, key_len, salt_len = ORACLE[profile]
    for key, salt in (
        (bytes(key_len - 1), bytes(salt_len)),
        (bytes(key_len + 1), bytes(salt_len)),
        (bytes(key_len), bytes(salt_len - 1)),
        (bytes(key_len), bytes(salt_len + 2)),
        (b"", b""),
    ):
        with pytest.raises(SrtpError):
            SrtpSession(profile, key, salt, outbound=True)
    with pytest.raises(SrtpError):
        SrtpSession(profile, None, bytes(salt_len), outbound=True)
    with pytest.raises(SrtpError):
        SrtpSession("AES_CM_256_HMAC_SHA1_80", bytes(32), bytes(14), outbound=True)
    # Key and salt lengths of another profile.
    if profile == "AEAD_AES_256_GCM":
        with pytest.raises(SrtpError):
            SrtpSession(profile, bytes(16), bytes(14), outbound=False)


def test_malformed_and_out_of_range_lengths(profile):
    key, salt = keys(profile)
    out = SrtpSession(profile, key, salt, outbound=True)
    inb = SrtpSession(profile, key, salt, outbound=False)
    buf = PacketBuffer(2048)
    load(buf, rtp(1, size=1500))
    for session in (out, inb):
        for method in (session.protect_rtp, session.unprotect_rtp, session.protect_rtcp, session.unprotect_rtcp):
            assert method(buf, -1) == -1
            assert method(buf, buf.size + 1) == -1
            assert method(buf, 4) == -1  # shorter than any header
    # RTP header claiming 15 CSRCs in a 20-byte packet.
    buf.data[0] = 0x8F
    assert out.protect_rtp(buf, 20) == -1
    assert inb.unprotect_rtp(buf, 20 + MAX_TRAILER) == -1
    # Too short for an SRTCP trailer.
    assert inb.unprotect_rtcp(buf, 9) == -1
    assert out.protect_rtp(buf, buf.limit + 1) == -1  # no room for the trailer
    assert out.protect_rtcp(buf, buf.limit + 1) == -1
    assert out.protect_rtcp_bytes(bytes(65536)) is None


def test_close_is_idempotent_and_disables(profile):
    key, salt = keys(profile)
    out = SrtpSession(profile, key, salt, outbound=True)
    buf = PacketBuffer()
    assert out.protect_rtp(buf, load(buf, rtp(1))) > 0
    out.close()
    out.close()
    assert out.closed
    assert out.protect_rtp(buf, load(buf, rtp(2))) == -1
    assert out.unprotect_rtp(buf, 100) == -1
    assert out.protect_rtcp(buf, load(buf, rtcp())) == -1
    assert out.unprotect_rtcp(buf, 100) == -1
    assert out.protect_rtcp_bytes(rtcp()) is None
    assert "closed" in repr(out)
    # Dropped without close: __del__ frees it.
    SrtpSession(profile, key, salt, outbound=False).__del__()


def test_hot_path_leaks_nothing():
    profile = "AEAD_AES_256_GCM"
    key, salt = keys(profile)
    out = SrtpSession(profile, key, salt, outbound=True)
    inb = SrtpSession(profile, key, salt, outbound=False)
    buf = PacketBuffer()
    length = load(buf, rtp(0))
    data = buf.data

    def run(start, count):
        for seq in range(start, start + count):
            data[2] = seq >> 8 & 0xFF
            data[3] = seq & 0xFF
            n = out.protect_rtp(buf, length)
            assert inb.unprotect_rtp(buf, n) == length

    run(0, 100)  # warm up
    before = sys.getallocatedblocks()
    run(100, 5000)
    assert sys.getallocatedblocks() - before < 50
