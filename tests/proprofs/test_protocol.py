"""The pure protocol layer: payloads built and responses decoded without sockets."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bridge.proprofs import (
    AmbiguousError,
    AuthenticationError,
    InvalidRequestError,
    RateLimitedError,
    TicketDraft,
    TicketFilters,
    TransientError,
)
from bridge.proprofs.protocol import (
    JSON_HEADERS,
    Credentials,
    build_create_payload,
    build_list_payload,
    decode_create,
    decode_list,
    endpoint_url,
    parse_retry_after,
)
from tests.conftest import FIXTURES

SEEDS = FIXTURES / "seeds"
SHARED_SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"
CHICAGO = ZoneInfo("America/Chicago")
CREDS = Credentials("john@proprofs.com", "s3cr3t-token")


def seed(name: str) -> bytes:
    return (SEEDS / name).read_bytes()


@pytest.mark.skipif(not SHARED_SEEDS.is_dir(), reason="shared/seeds is not beside the checkout")
@pytest.mark.parametrize("name", sorted(p.name for p in SEEDS.iterdir()))
def test_fixtures_are_verbatim_copies_of_the_vendor_pages(name: str) -> None:
    pages = "".join(p.read_text() for p in SHARED_SEEDS.iterdir())
    assert (SEEDS / name).read_text().rstrip("\n") in pages


def test_vendor_create_success_decodes_with_leading_zeros_C5() -> None:
    assert decode_create(200, {}, seed("create_success.json")) == "00700"


@pytest.mark.parametrize("name", ["create_error.json", "list_error.json"])
@pytest.mark.parametrize("status", [200, 400, 401, 403])
def test_vendor_error_body_is_an_authentication_error_whatever_the_status_C4(
    name: str, status: int
) -> None:
    with pytest.raises(AuthenticationError) as info:
        decode_create(status, {}, seed(name))
    assert info.value.description.startswith("Unable to authenticate")
    assert info.value.status == status


def test_vendor_list_sample_decodes_verbatim_L6_L7() -> None:
    page = decode_list(200, {}, seed("list_success.json"), CHICAGO)
    assert page.page == 1 and page.per_page == 25 and page.total_on_page == 1
    assert page.total_tickets == 1 and isinstance(page.total_tickets, int)
    assert page.next_page_link.endswith("?page=2") and page.previous_page_link == ""
    ticket = page.tickets[0]
    assert ticket.ticket_id == "231000"
    assert ticket.subject == "The ticket subject"
    assert ticket.status == "pending" and ticket.is_open and not ticket.deleted
    assert ticket.created == datetime(2024, 8, 23, 9, 7, 24, tzinfo=UTC)  # CDT → UTC
    assert ticket.created.tzinfo is not None
    assert [m.text for m in ticket.messages] == [
        "The ticket messagern",
        "The ticket message second.n",
    ]
    assert (
        ticket.messages[1].reply_by is not None and ticket.messages[1].reply_by.id == "SF008-10650"
    )
    assert ticket.messages[0].reply_by is None
    assert ticket.staff and ticket.staff.name == "John Smith"
    assert ticket.inbox and ticket.inbox.id == "IB008-20700"
    assert ticket.custom_field("CF008-104") == "Delhi"
    assert [label.name for label in ticket.labels] == ["Important", "New label"]
    assert ticket.due_date == ""


def test_create_payload_carries_every_field_and_custom_fields_as_an_array() -> None:
    draft = TicketDraft(
        email="john@acme.com",
        subject="Query About GPS Tracking Device",
        name="John Smith",
        phone="0000000000",
        description="I am writing…",
        staff="ST007-007",
        priority="normal",
        inbox="IB238-436",
        custom_fields={"CF007-07": "Micro", "CF007-08": "10KM"},
    )
    body = build_create_payload(CREDS, draft)
    assert body == {
        "account_email": "john@proprofs.com",
        "token": "s3cr3t-token",
        "email": "john@acme.com",
        "subject": "Query About GPS Tracking Device",
        "name": "John Smith",
        "phone": "0000000000",
        "description": "I am writing…",
        "staff": "ST007-007",
        "priority": "normal",
        "inbox": "IB238-436",
        "custom_fields": [
            {"id": "CF007-07", "value": "Micro"},
            {"id": "CF007-08", "value": "10KM"},
        ],
    }
    assert TicketDraft.from_dict(draft.to_dict()) == draft


def test_create_payload_omits_unset_optional_fields() -> None:
    body = build_create_payload(CREDS, TicketDraft(email="a@b.co", subject="Hi"))
    assert set(body) == {"account_email", "token", "email", "subject"}


@pytest.mark.parametrize(
    "draft",
    [
        TicketDraft(email="", subject="x"),
        TicketDraft(email="a@b.co", subject=""),
        TicketDraft(email="a@b.co", subject="x", priority="urgent"),
    ],  # type: ignore[arg-type]
)
def test_create_payload_refuses_what_proprofs_would(draft: TicketDraft) -> None:
    with pytest.raises(InvalidRequestError):
        build_create_payload(CREDS, draft)


def test_json_headers_C2() -> None:
    assert JSON_HEADERS == {"Accept": "application/json", "Content-Type": "application/json"}


def test_endpoint_urls_keep_the_trailing_slash_and_page_query_C1_L6() -> None:
    base = "https://www.proprofsdesk.com/app/api/v1/"
    assert endpoint_url(base, "create/ticket/") == base + "create/ticket/"
    assert endpoint_url(base.rstrip("/"), "list/ticket/", 3) == base + "list/ticket/?page=3"


def test_list_payload_sends_account_zone_strings_and_end_last_modified_A1_L7() -> None:
    filters = TicketFilters(
        start_ticket_id=4023,
        end_ticket_id=5643,
        inbox="IB008-20700",
        status="New",
        created_from=datetime(2024, 8, 24, 9, 17, 51, tzinfo=UTC),
        created_to=datetime(2024, 9, 18, 9, 17, 51, tzinfo=UTC),
        modified_from=datetime(2024, 8, 25, 15, 17, 51, tzinfo=UTC),
        modified_to=datetime(2024, 8, 26, 15, 17, 51, tzinfo=UTC),
    )
    body = build_list_payload(CREDS, filters, CHICAGO)
    assert body["start_created_date"] == "2024-08-24 04:17:51"
    assert body["end_last_modified_date"] == "2024-08-26 10:17:51"
    assert "last_modified_date" not in body and "created_date" not in body
    assert body["status"] == "new" and body["start_ticket_id"] == 4023


def test_the_vendor_sample_request_is_refused_by_the_client_A2() -> None:
    # The sample's modified window (2024-08-25 → 2024-08-22) ends before it starts.
    text = seed("list_request_sample.txt").decode()
    assert '"start_last_modified_date" : "2024-08-25 10:17:51"' in text
    assert '"end_last_modified_date" : "2024-08-22 10:17:51"' in text
    filters = TicketFilters(
        modified_from=datetime(2024, 8, 25, 10, 17, 51, tzinfo=CHICAGO),
        modified_to=datetime(2024, 8, 22, 10, 17, 51, tzinfo=CHICAGO),
    )
    with pytest.raises(InvalidRequestError, match="L5"):
        build_list_payload(CREDS, filters, CHICAGO)


@pytest.mark.parametrize(
    "filters",
    [
        TicketFilters(start_ticket_id=10, end_ticket_id=10),
        TicketFilters(start_ticket_id=11, end_ticket_id=10),
        TicketFilters(
            created_from=datetime(2024, 5, 1, tzinfo=UTC),
            created_to=datetime(2024, 5, 1, tzinfo=UTC),
        ),
    ],
)
def test_list_payload_refuses_start_not_before_end_L5(filters: TicketFilters) -> None:
    with pytest.raises(InvalidRequestError, match="L5"):
        build_list_payload(CREDS, filters, CHICAGO)


def test_list_payload_refuses_windows_over_three_months_L1() -> None:
    filters = TicketFilters(
        created_from=datetime(2024, 1, 1, 12, tzinfo=UTC),
        created_to=datetime(2024, 4, 2, 12, tzinfo=UTC),
    )
    with pytest.raises(InvalidRequestError, match="L1"):
        build_list_payload(CREDS, filters, CHICAGO)


def test_list_payload_refuses_unknown_status() -> None:
    with pytest.raises(InvalidRequestError):
        build_list_payload(CREDS, TicketFilters(status="archived"), CHICAGO)


def body(data: object) -> bytes:
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("status", "payload", "error"),
    [
        (200, {"status": "error", "description": "Subject is required"}, InvalidRequestError),
        (400, {"status": "error", "description": "Subject is required"}, InvalidRequestError),
        (200, {"status": "error", "description": "Please try again later"}, TransientError),
        (500, {"status": "error", "description": "boom"}, TransientError),
        (502, b"<html>Bad gateway</html>", TransientError),
        (503, {"status": "success", "ticket_id": "1"}, TransientError),
        (429, {"status": "error", "description": "slow down"}, RateLimitedError),
        (404, b"<html>Not found</html>", InvalidRequestError),
        (200, b"<html>oops</html>", AmbiguousError),
        (200, {"ticket_id": "00700"}, AmbiguousError),
        (200, {"status": "success"}, AmbiguousError),
        (302, {"status": "success", "ticket_id": "1"}, AmbiguousError),
    ],
)
def test_create_responses_map_to_errors_by_meaning_C4_C5_A3(
    status: int, payload: object, error: type[Exception]
) -> None:
    raw = payload if isinstance(payload, bytes) else body(payload)
    with pytest.raises(error):
        decode_create(status, {"Retry-After": "7"}, raw)


def test_rate_limited_carries_retry_after_A3() -> None:
    with pytest.raises(RateLimitedError) as info:
        decode_create(429, {"Retry-After": "7"}, b"")
    assert info.value.retry_after == 7.0
    assert info.value.retryable


def test_garbled_list_response_is_transient_not_ambiguous() -> None:
    with pytest.raises(TransientError):
        decode_list(200, {}, b"<html>", CHICAGO)


def test_retry_after_accepts_http_dates() -> None:
    now = datetime(2024, 1, 1, 12, tzinfo=UTC)
    assert parse_retry_after("Mon, 01 Jan 2024 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None) is None


def test_credentials_never_print_the_token_C3() -> None:
    assert "s3cr3t-token" not in repr(CREDS)
    assert "s3cr3t-token" not in str(CREDS)
