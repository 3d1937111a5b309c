"""STUN for an ICE-lite server: check a binding request, build its success response.

The STUN codec is aioice's; this module only applies the ICE rules (RFC 8445 7.3).
"""

from __future__ import annotations

from aioice import stun

STUN_HEADER = 20


def parse_binding_request(data: bytes) -> stun.Message | None:
    """A well-formed binding request (FINGERPRINT checked if present), else None."""
    try:
        message = stun.parse_message(data)
    except (ValueError, KeyError, IndexError):
        return None
    if message.message_method != stun.Method.BINDING or message.message_class != stun.Class.REQUEST:
        return None
    return message


def local_ufrag(request: stun.Message) -> str | None:
    """Our fragment of USERNAME ("ours:theirs")."""
    username = request.attributes.get("USERNAME")
    if not isinstance(username, str) or ":" not in username:
        return None
    return username.split(":", 1)[0]


def authentic(request: stun.Message, password: str) -> bool:
    """MESSAGE-INTEGRITY present and made with our password."""
    return "MESSAGE-INTEGRITY" in request.attributes and request.check_message_integrity(password.encode())


def binding_success(request: stun.Message, address: tuple[str, int], password: str) -> bytes:
    """The success response telling the peer its address, signed with our password."""
    response = stun.Message(stun.Method.BINDING, stun.Class.RESPONSE, transaction_id=request.transaction_id)
    response.attributes["XOR-MAPPED-ADDRESS"] = address
    response.add_message_integrity(password.encode())
    return bytes(response)
