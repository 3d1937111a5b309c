"""Random ids from the pooled kernel randomness: the shapes of uuid4 and token_hex, never repeated,
and a forked child drawing from a pool of its own."""

from __future__ import annotations

import os
import uuid

from kolabmeet import ids


def test_ids_have_the_shapes_of_the_standard_ones() -> None:
    for _ in range(200):
        text = ids.uuid4()
        made = uuid.UUID(text)
        assert (made.version, made.variant, str(made)) == (4, uuid.RFC_4122, text)
    assert len(ids.token_hex(16)) == 32 and int(ids.token_hex(16), 16) >= 0
    session = ids.session_id()
    assert len(session) == 20 and set(session) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_no_id_repeats_across_refills_of_the_pool() -> None:
    made = [ids.random_bytes(16) for _ in range(3 * ids.POOL_BYTES // 16 + 7)]
    assert len(set(made)) == len(made)
    assert len(ids.random_bytes(ids.POOL_BYTES + 1)) == ids.POOL_BYTES + 1


def test_a_forked_child_does_not_draw_its_parents_next_ids() -> None:
    ids.random_bytes(1)  # the pool is filled
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        os.write(write, ids.random_bytes(16))
        os._exit(0)
    os.close(write)
    child_bytes = os.read(read, 16)
    os.close(read)
    os.waitpid(child, 0)
    assert len(child_bytes) == 16 and child_bytes != ids.random_bytes(16)
