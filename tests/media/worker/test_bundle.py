"""The pipe bundle format: packets of one turn in one datagram, with byte fixtures."""

from __future__ import annotations

from kolabmeet.media.worker import bundle

FIRST = bytes.fromhex("80600001000000640000abcd") + b"\x01\x02"
SECOND = bytes.fromhex("80e00002000000c80000abcd")
BUNDLE = bytes.fromhex("00" "000e") + FIRST + bytes.fromhex("000c") + SECOND


def test_packets_are_written_with_their_lengths_after_the_marker() -> None:
    writer = bundle.BundleWriter()
    assert writer.empty
    writer.add(memoryview(FIRST))
    writer.add(memoryview(SECOND))
    assert bytes(writer.take()) == BUNDLE
    assert writer.empty, "take starts a new bundle"
    writer.add(memoryview(SECOND))
    assert bytes(writer.take()) == bytes.fromhex("00000c") + SECOND


def test_a_bundle_splits_into_its_packets() -> None:
    buf = bytearray(BUNDLE)
    assert bundle.is_bundle(buf, len(buf))
    assert [bytes(buf[o:o + n]) for o, n in bundle.split(buf, len(buf))] == [FIRST, SECOND]


def test_a_truncated_last_packet_is_left_out() -> None:
    buf = bytearray(BUNDLE)
    for length in (len(BUNDLE) - 1, len(BUNDLE) - len(SECOND) - 1):
        assert [bytes(buf[o:o + n]) for o, n in bundle.split(buf, length)] == [FIRST]
    assert list(bundle.split(buf, 2)) == []


def test_rtp_and_rtcp_are_not_bundles() -> None:
    for datagram in (bytearray(FIRST), bytearray(bytes.fromhex("81c90001"))):
        assert not bundle.is_bundle(datagram, len(datagram))
    assert not bundle.is_bundle(bytearray(1), 0)


def test_fits_counts_the_length_field() -> None:
    writer = bundle.BundleWriter(size=1 + 2 + len(FIRST))
    assert writer.fits(len(FIRST)) and not writer.fits(len(FIRST) + 1)
    writer.add(memoryview(FIRST))
    assert not writer.fits(0)
