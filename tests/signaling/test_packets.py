"""The signaling's socket.io packets: byte fixtures both ways, and what they refuse."""

from __future__ import annotations

import pytest
from socketio import packet

from kolabmeet.signaling.packets import SignalingPacket, ack_packet, parse_ack, parse_request


def test_an_event_encodes_as_socket_io_text() -> None:
    event = SignalingPacket(packet.EVENT, namespace="/", data=["notification", {"method": "x", "data": None}])
    assert event.encode() == '2["notification",{"method":"x","data":null}]'


def test_an_ack_with_its_id_and_non_ascii_text() -> None:
    ack = SignalingPacket(packet.ACK, namespace="/", id=7, data=[None, {"nickname": "Zoë", "n": 1.5}])
    assert ack.encode() == '37[null,{"nickname":"Zoë","n":1.5}]'


def test_bytes_never_make_a_binary_packet() -> None:
    event = SignalingPacket(packet.EVENT, data=["x", b"\x00\x01"])
    assert event.packet_type == packet.EVENT
    assert event.encode() == '2["x","AAE="]'


def test_a_request_decodes_with_its_ack_id() -> None:
    request = SignalingPacket(encoded_packet='212["request",{"method":"join","data":{"a":[1,true]}}]')
    assert (request.packet_type, request.id, request.namespace) == (packet.EVENT, 12, None)
    assert request.data == ["request", {"method": "join", "data": {"a": [1, True]}}]


@pytest.mark.parametrize("encoded", ['2["x",NaN]', '2["x",' + "9" * 5000 + "]", '2["x",', '2["x"]]'])
def test_malformed_or_unbounded_json_is_refused(encoded: str) -> None:
    with pytest.raises(ValueError):
        SignalingPacket(encoded_packet=encoded)


@pytest.mark.parametrize(("text", "expected"), [
    ('212["request",{"method":"join","data":{"a":[1,true]}}]', (12, {"method": "join", "data": {"a": [1, True]}})),
    ('2["request",{"method":"ping"}]', (None, {"method": "ping"})),
    ('20["request"]', (0, None)),
    ('23["request",null]', (3, None)),
])
def test_a_request_event_is_read_with_its_ack_id(text: str, expected: tuple[object, object]) -> None:
    assert parse_request(text) == expected


@pytest.mark.parametrize("text", [
    '2/admin,1["request",{}]', '21["notification",{}]', '31["request",{}]', '21["request",{},{}]', '21[]',
    '21{"request":1}', '21["request",', '2x["request",{}]', '2²["request",{}]', "2" + "1" * 16 + '["request",{}]',
    '51-["request",{"_placeholder":true,"num":0}]', "2", "",
    '21["request",' + "[" * 5000 + "]" * 5000 + "]",
])
def test_anything_else_is_left_to_socket_io(text: str) -> None:
    assert parse_request(text) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("37[]", (7, [])), ('312[null,{"a":1}]', (12, [None, {"a": 1}])),
    ("3[]", None), ('37{"a":1}', None), ("37[", None), ("3x[]", None), ("3" + "1" * 16 + "[]", None),
    ("27[]", None), ("3/admin,7[]", None), ("", None),
])
def test_an_ack_is_read_with_its_id_and_arguments(text: str, expected: object) -> None:
    assert parse_ack(text) == expected


@pytest.mark.parametrize(("answer", "text"), [
    (None, "37[]"), ((None, {"a": "Zoë"}), '37[null,{"a":"Zoë"}]'), ((500, "no"), '37[500,"no"]'), ("x", '37["x"]'),
])
def test_an_answer_acks_as_python_socketio_acks_it(answer: object, text: str) -> None:
    assert ack_packet(7, answer) == text
    arguments = [] if answer is None else list(answer) if isinstance(answer, tuple) else [answer]
    assert SignalingPacket(packet.ACK, namespace="/", id=7, data=arguments).encode() == text
