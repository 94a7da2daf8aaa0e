"""The client against the emulator over a real loopback socket, rule by rule."""

from __future__ import annotations

import itertools
import logging
import socket
import threading
import time
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests

from bridge.proprofs import (
    AmbiguousError,
    AuthenticationError,
    InvalidRequestError,
    ProProfsClient,
    RateLimitedError,
    TicketDraft,
    TicketFilters,
    TransientError,
)
from bridge.proprofs.emulator import EmulatorServer, EmulatorState
from bridge.proprofs.times import add_months, parse_local
from tests.conftest import ACCOUNT_EMAIL, TOKEN, raw_post, set_faults

CHICAGO = ZoneInfo("America/Chicago")


def draft(n: int = 0, **extra: object) -> TicketDraft:
    fields: dict[str, object] = {"email": f"user{n}@example.com", "subject": f"Ticket {n}"}
    fields.update(extra)
    return TicketDraft(**fields)  # type: ignore[arg-type]


def seed_history(server: EmulatorServer, created: list[datetime], **extra: object) -> list[str]:
    tickets = [
        {"email": f"h{i}@example.com", "subject": f"History {i}", "created": c.isoformat(), **extra}
        for i, c in enumerate(created)
    ]
    response = requests.post(
        f"{server.url}/_emulator/tickets", json={"tickets": tickets}, timeout=10
    )
    response.raise_for_status()
    return list(response.json()["ticket_ids"])


def list_calls(server: EmulatorServer) -> list[dict[str, object]]:
    return [c for c in server.state.calls if c["endpoint"] == "list"]


# --- create ---------------------------------------------------------------------------------


def test_create_returns_the_string_id_with_leading_zeros(client: ProProfsClient) -> None:
    ticket_id = client.create_ticket(draft())
    assert ticket_id == "00700" and isinstance(ticket_id, str)
    assert client.create_ticket(draft(1)) == "00701"


def test_create_sends_every_field_and_the_description_is_the_first_message(
    client: ProProfsClient, emulator: EmulatorServer
) -> None:
    ticket_id = client.create_ticket(
        TicketDraft(
            email="john@acme.com",
            subject="GPS",
            name="John Smith",
            phone="0000000000",
            description="Is the 101 in stock?",
            staff="ST007-007",
            priority="high",
            inbox="IB238-436",
            custom_fields={"CF007-07": "Micro", "CF007-08": "10KM"},
        )
    )
    ticket = client.get_ticket(ticket_id)
    assert ticket is not None
    assert (ticket.customer_email, ticket.customer_name, ticket.customer_phone) == (
        "john@acme.com",
        "John Smith",
        "0000000000",
    )
    assert ticket.priority == "high" and ticket.subject == "GPS"
    assert ticket.staff and ticket.staff.id == "ST007-007"
    assert ticket.inbox and ticket.inbox.id == "IB238-436"
    assert {c.id: c.value for c in ticket.custom_fields} == {
        "CF007-07": "Micro",
        "CF007-08": "10KM",
    }
    assert ticket.messages[0].text == "Is the 101 in stock?"
    assert ticket.status == "new"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"subject": "x"}, "email is required"),
        ({"email": "a@b.co"}, "subject is required"),
        ({"email": "not-an-email", "subject": "x"}, "valid email"),
        ({"email": "a@b.co", "subject": "x", "priority": "urgent"}, "priority"),
        ({"email": "a@b.co", "subject": "x", "priority": "High"}, "priority"),
        ({"email": "a@b.co", "subject": "x", "requester": "y"}, "Unknown parameter"),
        ({"email": "a@b.co", "subject": "x", "custom_fields": {"CF1-1": "v"}}, "custom_fields"),
        ({"email": "a@b.co", "subject": "x", "inbox": "support"}, "inbox"),
        ({"email": "a@b.co", "subject": "line\nbreak"}, "one line"),
    ],
)
def test_emulator_refuses_invalid_creates(
    emulator: EmulatorServer, body: dict[str, object], message: str
) -> None:
    response = raw_post(
        emulator,
        "/app/api/v1/create/ticket/",
        {"account_email": ACCOUNT_EMAIL, "token": TOKEN, **body},
    )
    assert response.json()["status"] == "error"
    assert message in response.json()["description"]
    assert emulator.state.tickets == {}


def test_invalid_request_surfaces_as_a_permanent_error(client: ProProfsClient) -> None:
    with pytest.raises(InvalidRequestError) as info:
        client.create_ticket(draft(email="nobody"))
    assert not info.value.retryable and "valid email" in info.value.description


# --- common rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/app/api/v1/create/ticket",
        "/app/api/v1/Create/Ticket/",
        "/app/api/v1/CREATE/ticket/",
        "/app/api/v1/list/ticket",
    ],
)
def test_paths_are_case_sensitive_and_end_with_a_slash_C1(
    emulator: EmulatorServer, path: str
) -> None:
    response = raw_post(
        emulator,
        path,
        {"account_email": ACCOUNT_EMAIL, "token": TOKEN, "email": "a@b.co", "subject": "x"},
        allow_redirects=False,
    )
    assert response.status_code == 404
    assert emulator.state.tickets == {}


def test_a_wrong_base_url_is_a_clear_permanent_error_C1(emulator: EmulatorServer) -> None:
    with ProProfsClient(emulator.url + "/app/API/v1/", ACCOUNT_EMAIL, TOKEN) as bad:
        with pytest.raises(InvalidRequestError, match="base URL"):
            bad.create_ticket(draft())


def test_body_must_be_json_C2(emulator: EmulatorServer) -> None:
    response = requests.post(
        emulator.url + "/app/api/v1/create/ticket/",
        data={"account_email": ACCOUNT_EMAIL, "token": TOKEN},
        timeout=5,
    )
    assert response.json() == {
        "status": "error",
        "description": "Request body must be JSON (Content-Type: application/json)",
    }
    response = requests.get(emulator.url + "/app/api/v1/list/ticket/", timeout=5)
    assert response.status_code == 405


def test_bad_credentials_raise_authentication_error_C3_C4(emulator: EmulatorServer) -> None:
    with ProProfsClient(emulator.base_url, ACCOUNT_EMAIL, "wrong-token") as bad:
        with pytest.raises(AuthenticationError) as info:
            bad.create_ticket(draft())
        assert (
            info.value.description == "Unable to authenticate request using account email and token"
        )
        with pytest.raises(AuthenticationError):
            bad.list_tickets()
    with ProProfsClient(emulator.base_url, "someone@else.example", TOKEN) as other:
        with pytest.raises(AuthenticationError):
            other.list_tickets()


def test_error_bodies_are_errors_whatever_the_http_status_C4(emulator: EmulatorServer) -> None:
    # The emulator answers errors with HTTP 200 by default; the client must still raise.
    with ProProfsClient(emulator.base_url, ACCOUNT_EMAIL, "wrong") as bad:
        with pytest.raises(AuthenticationError) as info:
            bad.list_tickets()
    assert info.value.status == 200
    emulator.state.error_status = 400
    try:
        with ProProfsClient(emulator.base_url, ACCOUNT_EMAIL, "wrong") as bad:
            with pytest.raises(AuthenticationError) as info:
                bad.list_tickets()
        assert info.value.status == 400
    finally:
        emulator.state.error_status = 200


def test_success_needs_status_success_in_the_body_C5(client: ProProfsClient) -> None:
    page = client.list_tickets()
    assert page.tickets == () and page.total_tickets == 0


def test_the_token_never_appears_in_logs_errors_or_reprs_C3(
    emulator: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "very-secret-token-0123456789"
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    with ProProfsClient(
        emulator.base_url,
        ACCOUNT_EMAIL,
        secret,
        read_timeout=0.3,
        list_retries=1,
        list_backoff=0.01,
    ) as bad:
        texts += [repr(bad), str(bad), repr(bad.credentials), str(bad.credentials)]
        for call in (lambda: bad.create_ticket(draft()), bad.list_tickets):
            with pytest.raises(AuthenticationError) as info:
                call()
            texts += [
                str(info.value),
                repr(info.value),
                "".join(traceback.format_exception(info.value)),
            ]
        set_faults(emulator, lose_create_rate=1.0, hang_seconds=1.0)
        with ProProfsClient(emulator.base_url, ACCOUNT_EMAIL, TOKEN, read_timeout=0.3) as good:
            with pytest.raises(AmbiguousError) as amb:
                good.create_ticket(draft())
            texts += [str(amb.value), "".join(traceback.format_exception(amb.value))]
    texts.append(caplog.text)
    assert texts and all(secret not in t and TOKEN not in t for t in texts)


# --- list -----------------------------------------------------------------------------------


def test_sixty_tickets_come_back_through_three_pages_L6(
    client: ProProfsClient, emulator: EmulatorServer
) -> None:
    created = [client.create_ticket(draft(i)) for i in range(60)]
    first = client.list_tickets()
    assert (first.page, first.total_tickets, first.total_on_page, first.per_page) == (1, 60, 25, 25)
    assert first.previous_page_link == "" and first.next_page_link.endswith("/list/ticket/?page=2")
    assert first.last_page_link.endswith("?page=3")
    emulator.state.calls.clear()
    listed = [t.ticket_id for t in client.iter_tickets()]
    assert listed == created
    assert [c["page"] for c in list_calls(emulator)] == [None, "2", "3"]
    last = client.list_tickets(page=3)
    assert last.total_on_page == 10 and last.next_page_link == ""
    assert last.previous_page_link.endswith("?page=2")


def test_a_ten_month_range_is_split_into_windows_of_three_months_L1(
    client: ProProfsClient, emulator: EmulatorServer
) -> None:
    start = datetime(2024, 1, 1, 6, tzinfo=UTC)
    created = [start + timedelta(days=15 * i) for i in range(20)]  # ~10 months
    ids = seed_history(emulator, created)
    emulator.state.calls.clear()
    tickets = list(
        client.iter_tickets(
            TicketFilters(created_from=start, created_to=start + timedelta(days=305))
        )
    )
    assert [t.ticket_id for t in tickets] == ids
    windows = [
        (
            parse_local(str(c["body"]["start_created_date"])),  # type: ignore[index]
            parse_local(str(c["body"]["end_created_date"])),
        )  # type: ignore[index]
        for c in list_calls(emulator)
    ]
    assert len(windows) == 4
    for w_start, w_end in windows:
        assert w_start < w_end <= add_months(w_start, 3)
    for (_, a_end), (b_start, _) in itertools.pairwise(windows):
        assert b_start == a_end + timedelta(seconds=1)


def test_a_single_window_over_three_months_is_refused_by_the_emulator_L1(
    emulator: EmulatorServer,
) -> None:
    response = raw_post(
        emulator,
        "/app/api/v1/list/ticket/",
        {
            "account_email": ACCOUNT_EMAIL,
            "token": TOKEN,
            "start_created_date": "2024-01-01 00:00:00",
            "end_created_date": "2024-04-01 00:00:01",
        },
    )
    assert response.json()["status"] == "error" and "3 months" in response.json()["description"]


def local(text: str) -> datetime:
    return parse_local(text).replace(tzinfo=CHICAGO)


def test_start_only_runs_three_months_forward_L2(emulator: EmulatorServer) -> None:
    ids = seed_history(
        emulator,
        [local("2024-01-10 12:00:00"), local("2024-04-09 12:00:00"), local("2024-04-11 12:00:00")],
    )
    response = raw_post(
        emulator,
        "/app/api/v1/list/ticket/",
        {
            "account_email": ACCOUNT_EMAIL,
            "token": TOKEN,
            "start_created_date": "2024-01-10 00:00:00",
        },
    )
    listed = [t["ticket_id"] for t in response.json()["ticket_data"]["tickets"]]
    assert listed == ids[:2]


def test_start_only_stops_at_now_when_sooner_L2(emulator: EmulatorServer) -> None:
    now = datetime.now(UTC)
    seed_history(emulator, [now - timedelta(days=2), now + timedelta(days=2)])
    start = (now - timedelta(days=5)).astimezone(CHICAGO).strftime("%Y-%m-%d %H:%M:%S")
    response = raw_post(
        emulator,
        "/app/api/v1/list/ticket/",
        {"account_email": ACCOUNT_EMAIL, "token": TOKEN, "start_created_date": start},
    )
    assert response.json()["ticket_data"]["total_tickets"] == "1"


def test_end_only_runs_three_months_back_L3(emulator: EmulatorServer) -> None:
    ids = seed_history(
        emulator,
        [local("2024-01-31 12:00:00"), local("2024-02-02 12:00:00"), local("2024-05-01 12:00:00")],
    )
    response = raw_post(
        emulator,
        "/app/api/v1/list/ticket/",
        {"account_email": ACCOUNT_EMAIL, "token": TOKEN, "end_created_date": "2024-05-01 12:00:00"},
    )
    assert [t["ticket_id"] for t in response.json()["ticket_data"]["tickets"]] == ids[1:]


def test_no_filter_means_the_last_three_months_L4(
    client: ProProfsClient, emulator: EmulatorServer
) -> None:
    now = datetime.now(UTC)
    ids = seed_history(emulator, [now - timedelta(days=120), now - timedelta(days=30)])
    assert [t.ticket_id for t in client.list_tickets().tickets] == ids[1:]
    # A start-only range in the client asks for everything up to now, in windows.
    everything = client.iter_tickets(TicketFilters(created_from=now - timedelta(days=200)))
    assert [t.ticket_id for t in everything] == ids


@pytest.mark.parametrize(
    "filters",
    [
        {"start_ticket_id": 701, "end_ticket_id": 701},
        {"start_ticket_id": 702, "end_ticket_id": 701},
        {"start_created_date": "2024-05-01 00:00:00", "end_created_date": "2024-05-01 00:00:00"},
        {
            "start_last_modified_date": "2024-05-02 00:00:00",
            "end_last_modified_date": "2024-05-01 00:00:00",
        },
    ],
)
def test_start_must_be_before_end_for_ids_and_dates_L5(
    emulator: EmulatorServer, filters: dict[str, object]
) -> None:
    response = raw_post(
        emulator,
        "/app/api/v1/list/ticket/",
        {"account_email": ACCOUNT_EMAIL, "token": TOKEN, **filters},
    )
    assert response.json()["status"] == "error"


def test_get_ticket_asks_for_a_range_around_the_id_L5(
    client: ProProfsClient, emulator: EmulatorServer
) -> None:
    ids = [client.create_ticket(draft(i)) for i in range(3)]
    emulator.state.calls.clear()
    ticket = client.get_ticket(ids[1])
    assert ticket is not None and ticket.ticket_id == ids[1] == "00701"
    body = list_calls(emulator)[0]["body"]
    assert body == {"start_ticket_id": 701, "end_ticket_id": 702}
    assert client.get_ticket("99999") is None


def test_times_are_in_the_account_zone_and_come_back_aware_L7(emulator: EmulatorServer) -> None:
    moment = datetime(2024, 7, 4, 17, 30, tzinfo=UTC)
    seed_history(emulator, [moment])
    response = raw_post(
        emulator,
        "/app/api/v1/list/ticket/",
        {
            "account_email": ACCOUNT_EMAIL,
            "token": TOKEN,
            "start_ticket_id": 1,
            "end_ticket_id": 100000,
        },
    )
    assert (
        response.json()["ticket_data"]["tickets"][0]["created_date_time"] == "2024-07-04 12:30:00"
    )
    with ProProfsClient(emulator.base_url, ACCOUNT_EMAIL, TOKEN) as c:
        ticket = c.get_ticket("00700")
    assert ticket is not None and ticket.created == moment


def test_the_account_time_zone_is_a_setting_L7() -> None:
    state = EmulatorState(ACCOUNT_EMAIL, TOKEN, timezone="Asia/Kolkata")
    moment = datetime(2024, 7, 4, 17, 30, tzinfo=UTC)
    with EmulatorServer(state) as server:
        seed_history(server, [moment])
        with ProProfsClient(server.base_url, ACCOUNT_EMAIL, TOKEN, timezone="Asia/Kolkata") as c:
            tickets = list(
                c.iter_tickets(
                    TicketFilters(
                        created_from=moment - timedelta(hours=1),
                        created_to=moment + timedelta(hours=1),
                    )
                )
            )
        assert state.calls[-1]["body"]["start_created_date"] == "2024-07-04 22:00:00"
    assert [t.created for t in tickets] == [moment]


def test_last_modified_date_is_a_synonym_and_created_date_is_ignored_A1(
    client: ProProfsClient, emulator: EmulatorServer
) -> None:
    ids = seed_history(emulator, [local("2024-08-21 12:00:00"), local("2024-08-24 12:00:00")])
    base = {
        "account_email": ACCOUNT_EMAIL,
        "token": TOKEN,
        "start_last_modified_date": "2024-08-20 00:00:00",
    }
    for key in ("last_modified_date", "end_last_modified_date"):
        response = raw_post(
            emulator,
            "/app/api/v1/list/ticket/",
            {**base, key: "2024-08-22 10:17:51", "created_date": "2024-08-22 04:17:51"},
        )
        assert [t["ticket_id"] for t in response.json()["ticket_data"]["tickets"]] == ids[:1]
    emulator.state.calls.clear()
    client.list_tickets(
        TicketFilters(
            modified_from=local("2024-08-20 00:00:00"), modified_to=local("2024-08-22 00:00:00")
        )
    )
    assert "end_last_modified_date" in list_calls(emulator)[0]["body"]  # type: ignore[operator]


def test_the_vendor_sample_request_is_refused_by_the_emulator_A2(emulator: EmulatorServer) -> None:
    # The seed's list sample, with its curly quotes and missing comma mended: its modified
    # window ends (08-22) before it starts (08-25).
    sample = {
        "account_email": ACCOUNT_EMAIL,
        "token": TOKEN,
        "start_ticket_id": 4023,
        "end_ticket_id": 5643,
        "inbox": "IB008-20700",
        "status": "new",
        "start_created_date": "2024-08-24 04:17:51",
        "end_created_date": "2024-09-18 04:17:51",
        "start_last_modified_date": "2024-08-25 10:17:51",
        "end_last_modified_date": "2024-08-22 10:17:51",
        "created_date": "2024-08-22 04:17:51",
        "last_modified_date": "2024-08-25 10:17:51",
    }
    response = raw_post(emulator, "/app/api/v1/list/ticket/", sample)
    assert response.json()["status"] == "error"
    sample["end_last_modified_date"] = sample["last_modified_date"] = "2024-08-26 10:17:51"
    assert raw_post(emulator, "/app/api/v1/list/ticket/", sample).json()["status"] == "success"


def test_transient_and_permanent_failures_are_told_apart_A3(
    client: ProProfsClient, emulator: EmulatorServer
) -> None:
    set_faults(emulator, error_rate=1.0)
    with pytest.raises(TransientError) as transient:
        client.create_ticket(draft())
    assert transient.value.retryable and transient.value.status == 503
    set_faults(emulator, error_rate=0.0)
    with pytest.raises(InvalidRequestError) as permanent:
        client.create_ticket(draft(priority="urgent-ish"))  # refused by the client itself
    assert not permanent.value.retryable


def test_a_created_ticket_is_found_again_by_its_reference_A4(
    client: ProProfsClient, emulator: EmulatorServer
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=2)
    for i in range(5):
        client.create_ticket(draft(i, inbox="IB238-436", description=f"Body {i}\n\n-- ref: r-{i}"))
    client.create_ticket(draft(9, inbox="IB238-999", description="Body\n\n-- ref: r-3"))
    window = TicketFilters(
        inbox="IB238-436", created_from=before, created_to=datetime.now(UTC) + timedelta(seconds=2)
    )
    found = [t for t in client.iter_tickets(window) if "ref: r-3" in t.messages[0].text]
    assert [t.ticket_id for t in found] == ["00703"]


def test_the_api_has_no_reply_or_close_endpoint_A5(
    client: ProProfsClient, emulator: EmulatorServer
) -> None:
    """Update exists (tests/proprofs/test_update.py); nothing replies, closes or sets a
    status, and the client offers no other write."""
    for path in ("reply/ticket/", "close/ticket/", "status/ticket/"):
        response = raw_post(
            emulator, "/app/api/v1/" + path, {"account_email": ACCOUNT_EMAIL, "token": TOKEN}
        )
        assert response.status_code == 404
    writes = {name for name in dir(client) if not name.startswith("_")} - {
        "base_url",
        "close",
        "create_ticket",
        "credentials",
        "get_ticket",
        "iter_tickets",
        "list_backoff",
        "list_retries",
        "list_tickets",
        "max_retry_after",
        "observer",
        "session",
        "timeout",
        "tz",
        "update_ticket",
    }
    assert writes == set()


# --- faults ---------------------------------------------------------------------------------


def test_latency_past_the_read_timeout_makes_a_create_ambiguous(emulator: EmulatorServer) -> None:
    set_faults(emulator, latency_ms=800)
    with ProProfsClient(
        emulator.base_url, ACCOUNT_EMAIL, TOKEN, read_timeout=0.3, list_retries=0
    ) as c:
        with pytest.raises(AmbiguousError):
            c.create_ticket(draft())
        with pytest.raises(TransientError):
            c.list_tickets()


def test_server_errors_are_transient_and_lists_are_retried(
    client: ProProfsClient, emulator: EmulatorServer
) -> None:
    set_faults(emulator, error_rate=1.0, error_status=502)
    with pytest.raises(TransientError) as info:
        client.list_tickets()
    assert info.value.status == 502
    assert emulator.state.counters["list.requests"] == 3  # one call plus list_retries=2
    assert emulator.state.counters.get("create.requests", 0) == 0
    with pytest.raises(TransientError):
        client.create_ticket(draft())
    assert emulator.state.counters["create.requests"] == 1  # creates are never retried


def test_rate_limits_raise_with_retry_after(
    client: ProProfsClient, emulator: EmulatorServer
) -> None:
    set_faults(emulator, rate_limit_rate=1.0, retry_after=30)
    with pytest.raises(RateLimitedError) as info:
        client.create_ticket(draft())
    assert info.value.retry_after == 30.0 and info.value.status == 429
    with pytest.raises(RateLimitedError):
        client.list_tickets()  # retry_after beyond max_retry_after: no waiting in the client
    assert emulator.state.counters["list.requests"] == 1


def test_a_list_rate_limit_with_a_short_retry_after_is_waited_out(emulator: EmulatorServer) -> None:
    set_faults(emulator, rate_limit_rate=1.0, retry_after=0)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        set_faults(emulator, rate_limit_rate=0.0)

    with ProProfsClient(
        emulator.base_url, ACCOUNT_EMAIL, TOKEN, sleep=sleep, list_backoff=0.05
    ) as c:
        assert c.list_tickets().total_tickets == 0
    assert slept == [0.05]


def test_auth_failure_fault(client: ProProfsClient, emulator: EmulatorServer) -> None:
    set_faults(emulator, auth_failure=True)
    with pytest.raises(AuthenticationError):
        client.create_ticket(draft())


@pytest.mark.parametrize("mode", ["hang", "drop"])
def test_a_lost_create_response_is_ambiguous_and_the_ticket_exists(
    emulator: EmulatorServer, mode: str
) -> None:
    set_faults(emulator, lose_create_rate=1.0, lose_mode=mode, hang_seconds=1.5)
    with ProProfsClient(emulator.base_url, ACCOUNT_EMAIL, TOKEN, read_timeout=0.5) as c:
        with pytest.raises(AmbiguousError) as info:
            c.create_ticket(draft(description="-- ref: lost-1"))
        assert not info.value.retryable
        set_faults(emulator, lose_create_rate=0.0)
        listed = list(c.list_tickets().tickets)
    assert [t.messages[0].text for t in listed] == ["-- ref: lost-1"]


def test_list_lag_hides_new_tickets_for_a_while(
    client: ProProfsClient, emulator: EmulatorServer
) -> None:
    set_faults(emulator, list_lag_seconds=0.6)
    ticket_id = client.create_ticket(draft())
    assert client.get_ticket(ticket_id) is None
    time.sleep(0.7)
    assert client.get_ticket(ticket_id) is not None


def test_connection_refused_is_transient_never_ambiguous() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with (
        ProProfsClient(
            f"http://127.0.0.1:{port}/app/api/v1/", ACCOUNT_EMAIL, TOKEN, list_retries=0
        ) as c,
        pytest.raises(TransientError, match="cannot reach"),
    ):
        c.create_ticket(draft())


def test_faults_endpoint_refuses_nonsense(emulator: EmulatorServer) -> None:
    response = requests.post(f"{emulator.url}/_emulator/faults", json={"error_rate": 2}, timeout=5)
    assert response.status_code == 400 and "between 0 and 1" in response.json()["error"]
    response = requests.post(f"{emulator.url}/_emulator/faults", json={"nope": 1}, timeout=5)
    assert response.status_code == 400 and "unknown fault" in response.json()["error"]
    assert requests.get(f"{emulator.url}/_emulator/faults", timeout=5).json()["error_rate"] == 0.0


def test_the_emulator_keeps_tickets_in_its_data_file(tmp_path: Path) -> None:
    data = tmp_path / "tickets.json"
    with EmulatorServer(EmulatorState(ACCOUNT_EMAIL, TOKEN, data_path=str(data))) as first:
        with ProProfsClient(first.base_url, ACCOUNT_EMAIL, TOKEN) as c:
            created = [c.create_ticket(draft(i)) for i in range(3)]
    with EmulatorServer(EmulatorState(ACCOUNT_EMAIL, TOKEN, data_path=str(data))) as second:
        with ProProfsClient(second.base_url, ACCOUNT_EMAIL, TOKEN) as c:
            assert [t.ticket_id for t in c.iter_tickets()] == created
            assert c.create_ticket(draft(9)) == "00703"  # numbering carries on


def test_the_emulator_serves_concurrent_requests(emulator: EmulatorServer) -> None:
    set_faults(emulator, latency_ms=300)
    results: list[str] = []

    def create(n: int) -> None:
        with ProProfsClient(emulator.base_url, ACCOUNT_EMAIL, TOKEN) as c:
            results.append(c.create_ticket(draft(n)))

    threads = [threading.Thread(target=create, args=(n,)) for n in range(10)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 10
    assert time.monotonic() - started < 2.0  # ten 300 ms calls side by side, not in a row


def test_the_emulator_keeps_a_connection_open_for_the_next_call(emulator: EmulatorServer) -> None:
    """As a real API's server does: a client's pooled connection serves call after call."""
    with ProProfsClient(emulator.base_url, ACCOUNT_EMAIL, TOKEN) as c:
        ports = []
        for n in range(5):
            c.create_ticket(draft(n))
            ports.append(local_ports(c))
        c.list_tickets()
        ports.append(local_ports(c))
    assert ports == [ports[0]] * 6 and len(ports[0]) == 1  # one open connection, six calls


def local_ports(client: ProProfsClient) -> list[int]:
    """The local ports of the client's pooled connections that are still open."""
    pools = client.session.get_adapter(client.base_url).poolmanager.pools
    return [
        conn.sock.getsockname()[1]
        for key in pools.keys()  # noqa: SIM118 - the container cannot be iterated itself
        for conn in pools[key].pool.queue
        if conn is not None and conn.sock is not None
    ]


def test_a_body_the_emulator_does_not_read_ahead_is_served_on_a_closed_connection(
    emulator: EmulatorServer,
) -> None:
    """A chunked body has no length to read ahead: werkzeug's own handler serves it, and the
    connection ends with the answer, so the next request cannot be taken for its tail."""
    body = iter([b'{"account_email": "x@example.com", ', b'"token": "wrong"}'])
    response = requests.post(
        emulator.base_url + "create/ticket/",
        data=body,  # a generator: sent chunked
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        timeout=5,
    )
    assert response.json()["status"] == "error"
    assert response.headers["Connection"] == "close"


def test_a_stopped_emulator_stops_answering_on_kept_connections() -> None:
    """A client's pooled connection must not reach a server that is down: the next call
    finds the connection closed and the port refusing, and is never sent."""
    server = EmulatorServer(EmulatorState(ACCOUNT_EMAIL, TOKEN)).start()
    with ProProfsClient(server.base_url, ACCOUNT_EMAIL, TOKEN, list_retries=0) as c:
        c.create_ticket(draft(1))
        server.stop()
        with pytest.raises(TransientError, match="cannot reach"):
            c.create_ticket(draft(2))
    assert len(server.state.tickets) == 1


@pytest.mark.parametrize("bypass", [False, True])
def test_the_environment_s_proxy_is_read_once_and_honoured(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch, bypass: bool
) -> None:
    """HTTP(S)_PROXY and NO_PROXY are read when the client is made (not on every call),
    and still decide where each call goes."""
    seen: list[bytes] = []
    with socket.socket() as proxy:
        proxy.bind(("127.0.0.1", 0))
        proxy.listen(1)
        proxy.settimeout(5)

        def answer() -> None:
            try:
                conn, _ = proxy.accept()
            except OSError:
                return
            with conn:
                seen.append(conn.recv(65536).split(b"\r\n", 1)[0])
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.getsockname()[1]}")
        if bypass:
            monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        with ProProfsClient(emulator.base_url, ACCOUNT_EMAIL, TOKEN, list_retries=0) as c:
            monkeypatch.delenv("HTTP_PROXY")  # read already: changing it now changes nothing
            monkeypatch.delenv("NO_PROXY", raising=False)
            if bypass:
                assert c.create_ticket(draft(1))
            else:
                with pytest.raises(TransientError):
                    c.create_ticket(draft(1))
        proxy.close()
        thread.join(timeout=5)
    if bypass:
        assert seen == [] and len(emulator.state.tickets) == 1
    else:
        assert seen == [f"POST {emulator.base_url}create/ticket/ HTTP/1.1".encode()]
        assert emulator.state.tickets == {}
