"""ICE-lite STUN rules on byte fixtures (RFC 5769 test vectors)."""

from __future__ import annotations

from aioice import stun as codec

from kolabmeet.media.worker import stun

# RFC 5769 2.1: a binding request with USERNAME "evtj:h6vY", MESSAGE-INTEGRITY and FINGERPRINT.
RFC5769_REQUEST = bytes.fromhex(
    "000100582112a442b7e7a701bc34d686fa87dfae"
    "802200105354554e207465737420636c69656e74"
    "002400046e0001ff"
    "80290008932ff9b151263b36"
    "000600096576746a3a68367659202020"
    "000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2"
    "80280004e57a3bcf"
)
RFC5769_PASSWORD = "VOkJxbRl1RmTxUk/WvJxBt"


def test_rfc5769_request_is_authentic_with_its_password() -> None:
    request = stun.parse_binding_request(RFC5769_REQUEST)
    assert request is not None
    assert stun.local_ufrag(request) == "evtj"
    assert stun.authentic(request, RFC5769_PASSWORD)
    assert not stun.authentic(request, RFC5769_PASSWORD + "x")


def test_tampered_fingerprint_or_truncation_is_not_a_request() -> None:
    tampered = bytearray(RFC5769_REQUEST)
    tampered[-1] ^= 1
    assert stun.parse_binding_request(bytes(tampered)) is None
    assert stun.parse_binding_request(RFC5769_REQUEST[:40]) is None
    assert stun.parse_binding_request(b"") is None


def test_responses_and_other_methods_are_not_requests() -> None:
    response = codec.Message(codec.Method.BINDING, codec.Class.RESPONSE)
    assert stun.parse_binding_request(bytes(response)) is None
    allocate = codec.Message(codec.Method.ALLOCATE, codec.Class.REQUEST)
    assert stun.parse_binding_request(bytes(allocate)) is None


def test_request_without_integrity_or_username_is_refused() -> None:
    request = codec.Message(codec.Method.BINDING, codec.Class.REQUEST)
    request.attributes["USERNAME"] = "abc:def"
    parsed = stun.parse_binding_request(bytes(request))
    assert parsed is not None and not stun.authentic(parsed, "password")
    bare = stun.parse_binding_request(bytes(codec.Message(codec.Method.BINDING, codec.Class.REQUEST)))
    assert bare is not None and stun.local_ufrag(bare) is None


def test_success_response_carries_address_and_integrity() -> None:
    request = stun.parse_binding_request(RFC5769_REQUEST)
    data = stun.binding_success(request, ("192.0.2.1", 32853), RFC5769_PASSWORD)
    assert data[:2] == b"\x01\x01"
    response = codec.parse_message(data)
    assert response.transaction_id == bytes.fromhex("b7e7a701bc34d686fa87dfae")
    assert response.attributes["XOR-MAPPED-ADDRESS"] == ("192.0.2.1", 32853)
    assert response.check_message_integrity(RFC5769_PASSWORD.encode())
    assert "FINGERPRINT" in response.attributes
