"""Both twins of the send history (send_history.py and _send_history.c)."""

import random

import pytest

from kolabmeet.media.worker import send_history
from kolabmeet.media.worker.send_history import HISTORY
from tests.media.worker.twins import compiled_twin, twin_fixture

_send_history = compiled_twin("_send_history")
needs_c = pytest.mark.skipif(_send_history is None, reason="the C twin was not built")
SendHistory = twin_fixture(send_history.PySendHistory, "_send_history", "SendHistory")


@pytest.fixture
def history(SendHistory):  # noqa: N803 (the class)
    return SendHistory()


def test_numbers_follow_on_and_wrap(history):
    assert [history.next(100, 1.0) for _ in range(3)] == [1, 2, 3]
    for _ in range(65536 - 5):
        history.next(100, 2.0)
    assert history.next(100, 3.0) == 65535
    assert history.next(100, 3.5) == 0
    assert history.lookup(0) == (3.5, 100)


def test_lookup_knows_the_last_packets_only(history):
    history.sent(7, 1.25, 1200)
    assert history.lookup(7) == (1.25, 1200)
    assert history.lookup(8) is None
    history.sent(7 + HISTORY, 2.0, 50)
    assert history.lookup(7) is None, "its slot was taken by a later packet"
    assert history.lookup(7 + HISTORY) == (2.0, 50)


def test_keywords_as_the_callers_use_them(history):
    assert history.next(size=10, now=1.0) == 1
    history.sent(seq=5, now=2.0, size=20)
    assert history.lookup(5) == (2.0, 20)
    with pytest.raises(TypeError):
        history.sent(5, 2.0)


@needs_c
def test_both_twins_answer_alike_to_the_same_calls():
    rng = random.Random(9)
    twins = [send_history.PySendHistory(), _send_history.SendHistory()]
    for step in range(20000):
        if rng.random() < 0.6:
            size, now = rng.randrange(0, 1500), step / 1000
            answers = [twin.next(size, now) for twin in twins]
        elif rng.random() < 0.5:
            seq, now, size = rng.randrange(0, 65536), step / 1000, rng.randrange(0, 1500)
            answers = [twin.sent(seq, now, size) for twin in twins]
        else:
            seq = rng.randrange(0, 65536)
            answers = [twin.lookup(seq) for twin in twins]
        assert answers[0] == answers[1]
