"""The two twins of the send step (send.py and its C build, _send.c) on the same packets."""

import os
import random
import socket
import struct
import subprocess
import sys

import pytest

from kolabmeet.media.worker import send
from kolabmeet.media.worker.rtp import rewrite_extension_ids
from kolabmeet.media.worker.srtp import MAX_TRAILER, PROFILES, PacketBuffer, SrtpSession

from tests.media.worker.twins import compiled_twin

_send = compiled_twin("_send")

needs_c = pytest.mark.skipif(_send is None, reason="the C twin was not built")
TWINS = [
    pytest.param((send.PyUdpSender, send.py_protect_into), id="python"),
    pytest.param((getattr(_send, "UdpSender", None), getattr(_send, "protect_into", None)), id="c", marks=needs_c),
]
KEY, SALT = bytes(range(32)), bytes(range(100, 112))


def packet(rng: random.Random, seq: int) -> bytes:
    """An RTP packet with a one- or two-byte header extension block of random elements."""
    two_byte = rng.random() < 0.3
    elements = b""
    for _ in range(rng.randrange(0, 5)):
        xid, value = rng.randrange(1, 15), bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
        elements += bytes([xid, len(value)]) + value if two_byte else bytes([xid << 4 | len(value) - 1]) + value
        elements += b"\0" * rng.randrange(0, 2)
    elements += b"\0" * (-len(elements) % 4)
    profile = 0x1000 if two_byte else 0xBEDE
    extension = struct.pack("!HH", profile, len(elements) // 4) + elements if elements else b""
    first = 0x90 if extension else 0x80
    header = struct.pack("!BBHII", first, 96, seq, seq * 90, 0x1234)
    return header + extension + bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))


def id_map(rng: random.Random) -> bytes:
    return bytes(rng.choice((0, rng.randrange(1, 15), rng.randrange(15, 256))) for _ in range(256))


@pytest.fixture
def receiver():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2)
    yield sock
    sock.close()


@pytest.fixture
def sender_sock():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    yield sock
    sock.close()


@pytest.mark.parametrize("twin", TWINS)
def test_each_twin_sends_what_the_receiver_decrypts_with_ids_mapped(twin, receiver, sender_sock):
    sender_class, _ = twin
    rng = random.Random(7)
    out_session = SrtpSession("AEAD_AES_256_GCM", KEY, SALT, outbound=True)
    in_session = SrtpSession("AEAD_AES_256_GCM", KEY, SALT, outbound=False)
    sender = sender_class(sender_sock, receiver.getsockname())
    out, back = PacketBuffer(), PacketBuffer()
    for seq in range(200):
        original, ext_map = packet(rng, seq), id_map(rng)
        length = sender.send_srtp(out_session, out, original, ext_map)
        assert length == len(original) + out_session.trailer
        received = receiver.recv(2048)
        assert len(received) == length
        back.data[:length] = received
        plain = in_session.unprotect_rtp(back, length)
        expected = bytearray(original)
        if original[0] & 0x10:
            rewrite_extension_ids(expected, len(expected), ext_map)
        assert bytes(back.data[:plain]) == bytes(expected)


@needs_c
def test_both_twins_give_the_same_bytes_for_the_same_packets():
    rng = random.Random(11)
    sessions = [SrtpSession("AES_CM_128_HMAC_SHA1_80", KEY[:16], SALT + b"xy", outbound=True) for _ in range(2)]
    buffers = [PacketBuffer(), PacketBuffer()]
    for seq in range(500):
        data = bytearray(packet(rng, seq))
        if rng.random() < 0.2:  # a damaged extension block: both must stop where the walk stops
            data[12 + rng.randrange(0, 4)] = rng.randrange(256)
        ext_map = id_map(rng) if rng.random() < 0.8 else None
        results = [protect(session, out, data, ext_map)
                   for protect, session, out in zip((send.py_protect_into, _send.protect_into), sessions, buffers)]
        assert results[0] == results[1]
        assert buffers[0].data[:results[0]] == buffers[1].data[:results[1]]


@pytest.mark.parametrize("twin", TWINS)
def test_what_cannot_be_protected_or_sent_is_refused_alike(twin, receiver, sender_sock):
    sender_class, protect_into = twin
    session = SrtpSession("AEAD_AES_128_GCM", KEY[:16], SALT, outbound=True)
    out = PacketBuffer(2048)
    rtp = packet(random.Random(1), 1)
    assert protect_into(session, out, bytes(2048 - MAX_TRAILER + 1), None) == -1
    with pytest.raises(ValueError):
        protect_into(session, out, b"\x90" + bytes(11) + b"\xbe\xde\x00\x01\x10\x00\x00\x00", b"\x01" * 16)
    sender = sender_class(sender_sock, receiver.getsockname())
    sender_sock.close()
    assert sender.send(rtp) is False
    assert sender.send_srtp(session, out, rtp, None) == -2
    session.close()
    assert protect_into(session, out, rtp, None) == -1
    assert sender.send_srtp(session, out, rtp, None) == -1


@pytest.mark.parametrize("twin", TWINS)
def test_each_twin_sends_plain_rtp_with_ids_mapped_and_counts_it(twin, receiver, sender_sock):
    """send_rtp, a plain transport's send step: called as the consumers call a transport's."""
    sender_class, _ = twin
    rng = random.Random(5)
    sender = sender_class(sender_sock, receiver.getsockname(), PacketBuffer())
    sent = 0
    for seq in range(300):
        original, ext_map = packet(rng, seq), id_map(rng) if rng.random() < 0.7 else None
        if seq % 2:
            assert sender.send_rtp(memoryview(original), ext_map, 1, paced=False, now=1.0, twcc_seq=seq) is True
        else:
            assert sender.send_rtp(original, ext_map, 255, True, 0.0, -1) is True
        expected = bytearray(original)
        if ext_map is not None and original[0] & 0x10:
            rewrite_extension_ids(expected, len(expected), ext_map)
        assert receiver.recv(2048) == bytes(expected)
        sent += len(original)
        assert sender.bytes_sent == sent


@pytest.mark.parametrize("twin", TWINS)
def test_what_send_rtp_cannot_send_is_refused_alike(twin, receiver, sender_sock):
    sender_class, _ = twin
    with_extension = b"\x90" + bytes(11) + b"\xbe\xde\x00\x01\x10\x00\x00\x00"
    without_out = sender_class(sender_sock, receiver.getsockname())
    assert without_out.send_rtp(bytes(12)) is True, "nothing to map: no buffer needed"
    with pytest.raises(ValueError):
        without_out.send_rtp(with_extension, b"\x01" * 256)
    sender = sender_class(sender_sock, receiver.getsockname(), PacketBuffer(2048))
    with pytest.raises(ValueError):
        sender.send_rtp(with_extension, b"\x01" * 16)
    with pytest.raises(TypeError):
        sender.send_rtp(bytes(12), extmap=None)
    assert sender.send_rtp(b"\x90" + bytes(2048), b"\x01" * 256) is False, "bigger than the buffer"
    sender_sock.close()
    assert sender.send_rtp(bytes(12)) is False
    assert sender.bytes_sent == 0


@pytest.mark.parametrize("twin", TWINS)
def test_each_twin_connects_its_socket_when_asked_and_then_hears_only_its_peer(twin, receiver, sender_sock):
    sender_class, _ = twin
    sender_sock.bind(("127.0.0.1", 0))
    unconnected = sender_class(sender_sock, receiver.getsockname(), PacketBuffer())
    assert unconnected.connected is False
    with pytest.raises(OSError):
        sender_sock.getpeername()
    sender = sender_class(sender_sock, receiver.getsockname(), PacketBuffer(), connect=True)
    assert sender.connected is True
    assert sender_sock.getpeername() == receiver.getsockname()
    rtp = packet(random.Random(2), 1)
    assert sender.send_rtp(rtp) is True and sender.send(b"second") is True
    assert receiver.recv(2048) == rtp and receiver.recv(2048) == b"second"
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        stranger.sendto(b"from a stranger", sender_sock.getsockname())
        receiver.sendto(b"from the peer", sender_sock.getsockname())
        sender_sock.settimeout(2)
        assert sender_sock.recv(2048) == b"from the peer"
    finally:
        stranger.close()


@pytest.mark.parametrize("twin", TWINS)
def test_a_socket_that_cannot_be_connected_is_left_unconnected(twin, sender_sock):
    sender_class, _ = twin
    sender_sock.bind(("127.0.0.1", 0))
    for address in (("255.255.255.255", 5000), ("127.0.0.1", 0)):  # broadcast: EACCES; port 0 connects nothing
        sender = sender_class(sender_sock, address, connect=True)
        assert sender.connected is False
        with pytest.raises(OSError):
            sender_sock.getpeername()
        assert sender.send(b"x") is False, "neither takes a datagram, connected or not"


@pytest.mark.parametrize("twin", TWINS)
def test_a_sender_needs_a_numeric_address_of_its_sockets_family(twin, sender_sock):
    sender_class, _ = twin
    for address in (("localhost", 5000), ("::1", 5000), ("127.0.0.1", 70000)):
        with pytest.raises(ValueError):
            sender_class(sender_sock, address)
    v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        sender_class(v6, ("::1", 5000))
        with pytest.raises(ValueError):
            sender_class(v6, ("127.0.0.1", 5000))
    finally:
        v6.close()


@pytest.mark.parametrize("profile", PROFILES)
def test_the_trailer_is_what_a_protect_adds(profile):
    key_length = 32 if profile == "AEAD_AES_256_GCM" else 16
    salt_length = 12 if profile.startswith("AEAD") else 14
    session = SrtpSession(profile, bytes(key_length), bytes(salt_length), outbound=True)
    out = PacketBuffer()
    rtp = packet(random.Random(3), 5)
    assert send.py_protect_into(session, out, rtp, None) == len(rtp) + session.trailer


@needs_c
def test_the_twins_agree_on_constants_and_the_c_one_is_chosen():
    assert _send.MAX_TRAILER == MAX_TRAILER
    assert send.COMPILED == (os.environ.get("KOLABMEET_NO_EXTENSIONS") != "1")


def test_kolabmeet_no_extensions_chooses_the_pure_python_twin():
    code = "from kolabmeet.media.worker import send; print(send.COMPILED, send.UdpSender.__module__)"
    env = {**os.environ, "KOLABMEET_NO_EXTENSIONS": "1"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "kolabmeet.media.worker.send"]


def test_every_c_source_is_a_known_twin():
    from pathlib import Path

    from kolabmeet.media.worker import compiled

    sources = sorted(path.stem for path in Path(compiled.__file__).parent.glob("_*.c"))
    assert sorted(compiled.TWINS) == sources


@needs_c
def test_a_c_sender_never_made_sends_nothing():
    sender = _send.UdpSender.__new__(_send.UdpSender)
    assert sender.send(b"x" * 12) is False
