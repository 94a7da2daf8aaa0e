"""Update-ticket, client and emulator, over a real loopback socket: one test per rule and
reading of PROPROFS_API.md's update section (U1–U4, A5–A9), and its faults."""

from __future__ import annotations

import dataclasses
import logging
import time
import traceback
from datetime import UTC, datetime, timedelta

import pytest
import requests

from bridge.proprofs import (
    AuthenticationError,
    InvalidRequestError,
    ProProfsClient,
    RateLimitedError,
    TicketDraft,
    TicketFilters,
    TicketUpdate,
    TransientError,
)
from bridge.proprofs.emulator import EmulatorServer
from tests.conftest import ACCOUNT_EMAIL, TOKEN, raw_post, set_faults

UPDATE = "/app/api/v1/update/ticket/"


def created(client: ProProfsClient, **extra: object) -> str:
    fields: dict[str, object] = {"email": "jane@example.com", "subject": "Disk almost full"}
    fields.update(extra)
    return client.create_ticket(TicketDraft(**fields))  # type: ignore[arg-type]


def stored(emulator: EmulatorServer, ticket_id: str) -> dict[str, object]:
    """The ticket as the emulator's ticket view shows it (update history included)."""
    found = requests.get(f"{emulator.url}/_emulator/tickets", timeout=5).json()["tickets"]
    return next(t for t in found if t["ticket_id"] == ticket_id)


def refused(emulator: EmulatorServer, body: dict[str, object]) -> str:
    """The description of an update the emulator refuses."""
    answer = raw_post(emulator, UPDATE, {"account_email": ACCOUNT_EMAIL, "token": TOKEN, **body})
    data = answer.json()
    assert data["status"] == "error", data
    return str(data["description"])


def test_an_update_names_a_ticket_of_the_account_U1(
    client: ProProfsClient, emulator: EmulatorServer
) -> None:
    created(client)
    assert refused(emulator, {"subject": "No id"}) == "ticket_id is required"
    with pytest.raises(InvalidRequestError) as unknown:
        client.update_ticket("99999", TicketUpdate(subject="Nobody's"))
    assert "Ticket 99999 not found" in str(unknown.value) and not unknown.value.retryable


def test_there_is_no_status_and_no_reply_U2_A5(
    client: ProProfsClient, emulator: EmulatorServer
) -> None:
    ticket_id = created(client)
    names = {f.name for f in dataclasses.fields(TicketUpdate)}
    assert not names & {"status", "reply", "message", "note"}
    number = int(ticket_id)
    assert refused(emulator, {"ticket_id": number, "status": "closed"}) == (
        "Unknown parameter: status"
    )
    assert stored(emulator, ticket_id)["status"] == "new"


def test_fields_not_sent_stay_and_fields_sent_replace_U3(
    client: ProProfsClient, emulator: EmulatorServer
) -> None:
    ticket_id = created(client, name="Jane", phone="555-0100", priority="low")
    client.update_ticket(ticket_id, TicketUpdate(subject="Disk full", priority="high"))
    ticket = client.get_ticket(ticket_id)
    assert ticket is not None
    assert (ticket.subject, ticket.priority) == ("Disk full", "high")
    assert (ticket.customer_name, ticket.customer_phone) == ("Jane", "555-0100")
    assert emulator.state.calls[-2]["body"] == {
        "ticket_id": int(ticket_id),
        "subject": "Disk full",
        "priority": "high",
    }
    with pytest.raises(InvalidRequestError, match="at least one field"):
        client.update_ticket(ticket_id, TicketUpdate())  # nothing to change: not sent


def test_an_update_moves_the_modified_time_into_a_modified_window_U4(
    client: ProProfsClient, emulator: EmulatorServer
) -> None:
    ticket_id = created(client)
    before = client.get_ticket(ticket_id)
    assert before is not None
    time.sleep(1.2)  # the list API's times have whole seconds
    since = datetime.now(UTC).replace(microsecond=0)  # a second after the create's
    window = TicketFilters(modified_from=since, modified_to=datetime.now(UTC) + timedelta(1))
    assert [t.ticket_id for t in client.list_tickets(window).tickets] == []
    client.update_ticket(ticket_id, TicketUpdate(priority="high"))
    after = client.get_ticket(ticket_id)
    assert after is not None and after.modified > before.modified
    assert after.created == before.created
    assert [t.ticket_id for t in client.list_tickets(window).tickets] == [ticket_id]


def test_the_id_goes_as_a_number_and_only_a_number_names_a_ticket_A6(
    client: ProProfsClient, emulator: EmulatorServer
) -> None:
    ticket_id = created(client)
    assert ticket_id == "00700"
    client.update_ticket(ticket_id, TicketUpdate(subject="Sent as 700"))
    sent = emulator.state.calls[-1]["body"]["ticket_id"]  # type: ignore[index]
    assert sent == 700 and type(sent) is int
    assert (
        raw_post(
            emulator,
            UPDATE,
            {
                "account_email": ACCOUNT_EMAIL,
                "token": TOKEN,
                "ticket_id": "00700",
                "subject": "A string of digits, leniently",
            },
        ).json()["status"]
        == "success"
    )
    for wrong in (700.0, True, -700, "", "7e2", [700]):
        assert refused(emulator, {"ticket_id": wrong, "subject": "x"}) == (
            "ticket_id must be a ticket number"
        ), wrong
    for wrong_id in ("", "seven", "-700", "7.0"):
        with pytest.raises(InvalidRequestError, match="string of digits"):
            client.update_ticket(wrong_id, TicketUpdate(subject="x"))
    assert stored(emulator, ticket_id)["subject"] == "A string of digits, leniently"


def test_a_description_replaces_the_first_message_and_leaves_replies_A7(
    client: ProProfsClient, emulator: EmulatorServer
) -> None:
    ticket_id = created(client, description="It is at 91%.")
    answer = requests.post(
        f"{emulator.url}/_emulator/tickets/{ticket_id}/reply", json={"text": "Looking."}, timeout=5
    )
    answer.raise_for_status()
    client.update_ticket(ticket_id, TicketUpdate(description="It is at 99%.\n\nSeen 3 times."))
    ticket = client.get_ticket(ticket_id)
    assert ticket is not None
    assert [m.text for m in ticket.messages] == ["It is at 99%.\n\nSeen 3 times.", "Looking."]
    bare = created(client)  # no description: the update makes the first message
    client.update_ticket(bare, TicketUpdate(description="Now described."))
    described = client.get_ticket(bare)
    assert described is not None and [m.text for m in described.messages] == ["Now described."]


def test_custom_fields_change_by_id_and_the_others_keep_their_values_A8(
    client: ProProfsClient, emulator: EmulatorServer
) -> None:
    ticket_id = created(client, custom_fields={"CF1-1": "firing", "CF1-2": "1"})
    client.update_ticket(ticket_id, TicketUpdate(custom_fields={"CF1-2": "5", "CF1-3": "db-7"}))
    ticket = client.get_ticket(ticket_id)
    assert ticket is not None
    assert {f.id: f.value for f in ticket.custom_fields} == {
        "CF1-1": "firing",
        "CF1-2": "5",
        "CF1-3": "db-7",
    }


def test_a_deleted_ticket_cannot_be_updated_A9(
    client: ProProfsClient, emulator: EmulatorServer
) -> None:
    ticket_id = created(client)
    deleted = requests.post(f"{emulator.url}/_emulator/tickets/{ticket_id}/delete", timeout=5)
    deleted.raise_for_status()
    with pytest.raises(InvalidRequestError, match="has been deleted") as info:
        client.update_ticket(ticket_id, TicketUpdate(subject="Too late"))
    assert not info.value.retryable
    assert stored(emulator, ticket_id)["subject"] == "Disk almost full"


def test_the_emulator_checks_an_updates_fields_as_a_creates(
    client: ProProfsClient, emulator: EmulatorServer
) -> None:
    number = int(created(client))
    for body, description in (
        ({"priority": "urgent"}, "priority must be one of high, normal, low"),
        ({"email": "not-an-address"}, "email is not a valid email address"),
        ({"subject": "  "}, "subject is required"),
        ({"staff": "nobody"}, "staff 'nobody' is not a staff id"),
        (
            {"custom_fields": [{"id": "CF1-1"}]},
            "custom_fields must be an array of {id, value} objects",
        ),
        ({"labels": ["x"]}, "Unknown parameter: labels"),
    ):
        assert refused(emulator, {"ticket_id": number, **body}) == description


def test_the_ticket_view_shows_every_update_in_order(
    client: ProProfsClient, emulator: EmulatorServer
) -> None:
    ticket_id = created(client)
    client.update_ticket(ticket_id, TicketUpdate(priority="high"))
    client.update_ticket(
        ticket_id, TicketUpdate(subject="[RESOLVED] Disk", custom_fields={"CF1-1": "ok"})
    )
    history = stored(emulator, ticket_id)["updates"]
    assert [u["fields"] for u in history] == [  # type: ignore[union-attr]
        {"priority": "high"},
        {"subject": "[RESOLVED] Disk", "custom_fields": ["CF1-1"]},
    ]
    assert emulator.state.counters["update.updated"] == 2


def test_update_faults_errors_rate_limits_and_lost_answers(
    emulator: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Faults reach update as they reach create: a 5xx and a rate limit are passing
    failures; a lost answer is one too (sending the update again is safe), though the
    update was made. The token appears in none of it."""
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    with ProProfsClient(emulator.base_url, ACCOUNT_EMAIL, TOKEN, read_timeout=0.5) as client:
        ticket_id = created(client)
        set_faults(emulator, error_rate=1.0)
        with pytest.raises(TransientError) as server_error:
            client.update_ticket(ticket_id, TicketUpdate(priority="high"))
        assert server_error.value.status == 503 and server_error.value.retryable
        set_faults(emulator, error_rate=0.0, rate_limit_rate=1.0, retry_after=3)
        with pytest.raises(RateLimitedError) as limited:
            client.update_ticket(ticket_id, TicketUpdate(priority="high"))
        assert limited.value.retry_after == 3
        set_faults(emulator, rate_limit_rate=0.0, lose_update_rate=1.0, hang_seconds=1.0)
        with pytest.raises(TransientError) as lost:
            client.update_ticket(ticket_id, TicketUpdate(priority="high"))
        assert lost.value.retryable and "did not answer" in str(lost.value)
        assert stored(emulator, ticket_id)["priority"] == "high"  # made; its answer lost
        texts += [
            str(e.value) + "".join(traceback.format_exception(e.value))
            for e in (server_error, limited, lost)
        ]
    with ProProfsClient(emulator.base_url, ACCOUNT_EMAIL, "wrong-token-0123") as bad:
        set_faults(emulator, lose_update_rate=0.0)
        with pytest.raises(AuthenticationError) as auth:
            bad.update_ticket(ticket_id, TicketUpdate(priority="low"))
        texts.append("".join(traceback.format_exception(auth.value)))
    texts.append(caplog.text)
    assert all(TOKEN not in t and "wrong-token-0123" not in t for t in texts)
    assert emulator.state.counters["update.lost"] == 1
