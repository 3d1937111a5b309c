"""socket.io packets of the signaling protocol: JSON only, encoded and decoded by msgspec.

python-socketio takes SignalingPacket as its serializer. Its default packet walks every outgoing
payload looking for bytes to send as attachments, and decodes with the json module with a Python
callback per integer (to refuse integers of over 100 digits, slow to convert); the protocol
carries no binary, and msgspec does both ends in C, refusing integers beyond CPython's limit of
4300 digits.

A session's `request` events, most of what a client sends, are read and answered here
(`parse_request`, `ack_packet`): see `session.py`.
"""

from __future__ import annotations

from typing import Any

import msgspec
from socketio import packet

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class _Json:
    """The two functions socket.io's packets call on their `json` attribute."""

    @staticmethod
    def dumps(data: Any, **_options: Any) -> str:
        return _encode(data).decode()

    @staticmethod
    def loads(text: str | bytes, **_options: Any) -> Any:
        return _decode(text)


class SignalingPacket(packet.Packet):
    """A socket.io packet whose payload is JSON and never binary."""

    uses_binary_events = False
    json = _Json


MAX_ACK_ID_DIGITS = 15
"""Longer ack ids are not read (socket.io clients count from 0; python-socketio refused more than 100
digits, CPython converts at most 4300)."""


def _split(text: str, kind: str) -> tuple[int | None, Any] | None:
    """(ack id or None, decoded JSON) of a socket.io packet `<kind><id>[...]` of the default
    namespace; None when it is another kind, or malformed."""
    bracket = text.find("[", 1, MAX_ACK_ID_DIGITS + 2)
    if not text.startswith(kind) or bracket < 0:
        return None
    digits = text[1:bracket]
    if digits and not (digits.isascii() and digits.isdigit()):
        return None
    try:
        data = _decode(text[bracket:])
    except (msgspec.DecodeError, ValueError, RecursionError):
        return None
    return (int(digits) if digits else None), data


def parse_request(text: str) -> tuple[int | None, Any] | None:
    """(ack id or None, payload) of a socket.io packet `2<id>["request",payload]` of the default
    namespace; None for any other packet, a malformed one included (the session ignores it, as
    python-socketio ignores an event it has no handler for)."""
    if not text.startswith('["request"', text.find("[", 1, MAX_ACK_ID_DIGITS + 2)):
        return None
    packet = _split(text, "2")
    if packet is None:
        return None
    ack_id, event = packet
    if not isinstance(event, list) or not 1 <= len(event) <= 2 or event[0] != "request":
        return None
    return ack_id, (event[1] if len(event) == 2 else None)


def parse_ack(text: str) -> tuple[int, list[Any]] | None:
    """(ack id, arguments) of a socket.io ACK `3<id>[...]` of the default namespace; None for
    anything else, a malformed one included."""
    packet = _split(text, "3")
    if packet is None or packet[0] is None or not isinstance(packet[1], list):
        return None
    return packet[0], packet[1]


def ack_packet(ack_id: int, answer: Any) -> str:
    """The socket.io ACK `3<id>[...]` of an answer, as python-socketio makes it: a tuple is the
    ack's arguments, None none, anything else the one argument."""
    arguments = [] if answer is None else list(answer) if isinstance(answer, tuple) else [answer]
    return f"3{ack_id}" + _encode(arguments).decode()
