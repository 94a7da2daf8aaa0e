"""A submission that goes dead is announced to the operator's endpoint: a Standard-Webhooks
signed POST from the real ``bridge worker``, retried when the endpoint fails."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.guards.signatures import standard_webhooks
from bridge.outbox.notify import DeadLetterHook, DeadLetterNotifier
from bridge.outbox.store import SubmissionStore
from bridge.proprofs import TicketDraft
from bridge.proprofs.emulator import EmulatorServer
from tests.e2e.harness import start_worker, stop, write_config
from tests.support.receiver import Receiver

SECRET = "whsec_" + "c2VjcmV0LWZvci1kZWFkLWxldHRlci10ZXN0cw=="


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


def verified(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    lowered = {k.lower(): v for k, v in headers.items()}
    standard_webhooks(lowered, body, SECRET, now=time.time())  # raises if it does not match
    data: dict[str, Any] = json.loads(body)
    return data


def test_the_worker_posts_a_signed_notice_for_each_dead_letter(
    store_url: str, emulator: EmulatorServer, tmp_path: Path, receiver: Receiver
) -> None:
    config = write_config(
        tmp_path / "bridge.yaml",
        store_url,
        emulator,
        delivery={"dead_letters": {"url": receiver.url, "secret": SECRET}},
    )
    with SubmissionStore(store_url) as store:
        # ProProfs refuses this one outright (no valid requester): dead at the first try.
        dead = store.enqueue(
            "events", "hook", TicketDraft(email="not-an-address", subject="Broken")
        ).id
        fine = store.enqueue(
            "events", "hook", TicketDraft(email="ok@example.com", subject="Fine")
        ).id
        worker = start_worker(config, until_idle=True)
        assert stop(worker, sig=0, timeout=60) == 0
        assert store.get(dead).state == "dead"  # type: ignore[union-attr]
        assert store.get(fine).state == "delivered"  # type: ignore[union-attr]
    assert len(receiver.posts) == 1
    headers, body = receiver.posts[0]
    notice = verified(headers, body)
    assert notice["type"] == "submission.dead"
    assert notice["data"]["id"] == dead and notice["data"]["route"] == "events"
    assert notice["data"]["attempts"] == 1 and notice["data"]["error"]
    assert headers["webhook-id"] == f"msg_dead_{dead}"
    assert "not-an-address" not in body.decode()  # no personal data in the notice
    # A tampered body does not verify.
    with pytest.raises(Exception, match="does not match"):
        verified(headers, body.replace(b"events", b"evil!!"))
    assert SECRET not in (tmp_path / "bridge.worker.log").read_text()


def test_a_failing_endpoint_is_tried_again_then_given_up(store: SubmissionStore) -> None:
    flaky = Receiver(fail=2)
    try:
        notify = DeadLetterNotifier(DeadLetterHook(flaky.url, SECRET), tries=(0.0, 0.1, 0.1))
        sid = store.enqueue("r", "form", TicketDraft(email="a@example.com", subject="x")).id
        claim = store.get(sid)
        assert claim is not None
        notify(claim, "gave up after 8 attempts: HTTP 500")
        notify.drain(10)
        assert len(flaky.posts) == 3  # two 503s, then taken
        ids = {headers["webhook-id"] for headers, _ in flaky.posts}
        assert ids == {f"msg_dead_{sid}"}  # the same message id each time: idempotent
        down = DeadLetterNotifier(
            DeadLetterHook("http://127.0.0.1:9/nothing", SECRET), tries=(0.0, 0.05)
        )
        down(claim, "x")
        down.drain(10)  # refused twice, logged and dropped; nothing raised
        assert "whsec" not in repr(down) and "whsec" not in repr(down.hook)
    finally:
        flaky.close()
