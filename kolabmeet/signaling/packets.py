"""socket.io packets of the signaling protocol: JSON only, encoded and decoded by msgspec.

python-socketio takes this class as its serializer. Its default packet walks every outgoing
payload looking for bytes to send as attachments, and decodes with the json module with a Python
callback per integer (to refuse integers of over 100 digits, slow to convert); the protocol
carries no binary, and msgspec does both ends in C, refusing integers beyond CPython's limit of
4300 digits.
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
