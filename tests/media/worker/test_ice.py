"""ICE-lite credentials."""

from __future__ import annotations

import string

import pytest

from kolabmeet.media.worker.ice import random_credential


@pytest.mark.parametrize("length", [1, 4, 5, 16, 22, 32, 33])
def test_credentials_have_their_length_in_ice_characters(length: int) -> None:
    credentials = {random_credential(length) for _ in range(200)}
    assert all(len(text) == length and set(text) <= set(string.ascii_lowercase + "234567") for text in credentials)
    assert len(credentials) > 150 or length == 1


def test_every_character_is_drawn() -> None:
    assert set("".join(random_credential(32) for _ in range(100))) == set(string.ascii_lowercase + "234567")
