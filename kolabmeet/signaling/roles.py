"""Peer roles: a bitmask, as the Kolab app hands them out."""

from __future__ import annotations

from enum import IntFlag


class Role(IntFlag):
    SUBSCRIBER = 1
    PUBLISHER = 2
    MODERATOR = 4
    SCREEN = 8
    OWNER = 16


ALL_ROLES = int(Role.SUBSCRIBER | Role.PUBLISHER | Role.MODERATOR | Role.SCREEN | Role.OWNER)


def has(role: int, bits: int) -> bool:
    """Whether `role` has any of `bits`."""
    return bool(role & bits)


def parse_role(value: object, field: str = "role") -> int:
    """A role bitmask from client input: an int of known bits only."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{field} must be an integer bitmask")
    if value < 0 or value & ~ALL_ROLES:
        raise ValueError(f"{field} {value} has unknown bits (known: 1, 2, 4, 8, 16)")
    return value
