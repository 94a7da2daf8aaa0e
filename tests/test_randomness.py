"""Ids drawn from a block of OS randomness: the right size, never repeated, not even by a
forked child (which would otherwise go on with its parent's block)."""

from __future__ import annotations

import os
import re
import threading

from bridge import randomness
from bridge.outbox.records import new_submission_id


def test_tokens_are_hex_of_the_asked_size_and_never_repeat() -> None:
    seen: set[str] = set()
    lock = threading.Lock()

    def draw() -> None:
        mine = [randomness.token_hex(10) for _ in range(2_000)]  # several blocks each
        with lock:
            seen.update(mine)

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 8_000
    assert all(len(t) == 20 and int(t, 16) >= 0 for t in seen)
    assert len(randomness.token_hex(5_000)) == 10_000  # larger than a block
    assert new_submission_id().startswith("pb-") and len(new_submission_id()) == 23


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    randomness.token_hex(1)  # the parent holds a block, most of it unused
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        os.close(read)
        os.write(write, ",".join(randomness.token_hex(10) for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split(","))
    os.waitpid(pid, 0)
    parent = {randomness.token_hex(10) for _ in range(50)}
    assert len(child) == 50 and not child & parent


def test_submission_ids_come_in_time_order_with_40_random_bits() -> None:
    """The first 10 digits are the millisecond an id was made, so ids of later
    milliseconds sort after earlier ones (and the rows of one commit share the id index's
    pages); the rest is random: a thousand ids of one millisecond are a thousand ids."""
    now = 1_796_678_400.25
    earlier = new_submission_id(now - 0.001)
    same = {new_submission_id(now) for _ in range(1_000)}
    later = new_submission_id(now + 0.002)
    assert len(same) == 1_000
    assert all(re.fullmatch(r"pb-[0-9a-f]{20}", made) for made in same)
    assert {made[3:13] for made in same} == {f"{int(now * 1000) & 0xFF_FFFF_FFFF:010x}"}
    assert earlier < min(same) and max(same) < later
    assert len({made[13:] for made in same}) == 1_000
