"""The recipes on docs/events.md, as a user pastes them: each loads with the config and
renders, from a real event, the body its target takes."""

from __future__ import annotations

import json

from bridge.outbox.events import body_of
from tests.support.recipes import sample, subscribers


def test_the_page_has_the_three_recipes_and_each_loads() -> None:
    assert set(subscribers()) == {"ops-slack", "ops-teams", "silence-while-worked"}


def test_slack_gets_one_text_with_the_reply() -> None:
    slack = subscribers()["ops-slack"]
    reply = {"reply": {"text": 'Fixed: "rm -rf /tmp/cache"', "at": "", "by": "Ana"}}
    body = json.loads(body_of(slack, sample("ticket.replied", **reply)))
    assert body == {
        "text": '*ticket.replied* #00731 [FIRING:1] DiskFull db-1 "prod" — open: '
        'Fixed: "rm -rf /tmp/cache"'
    }


def test_teams_gets_a_message_card() -> None:
    teams = subscribers()["ops-teams"]
    body = json.loads(body_of(teams, sample("ticket.status_changed")))
    assert body["@type"] == "MessageCard" and body["summary"] == "ticket.status_changed"
    assert body["title"] == '#00731 [FIRING:1] DiskFull db-1 "prod"'
    assert body["text"] == "ticket.status_changed: open"


def test_the_silence_matches_the_group_for_four_hours() -> None:
    silence = subscribers()["silence-while-worked"]
    labels = {"alertname": "DiskFull", "instance": 'db-1"'}
    body = json.loads(body_of(silence, sample("ticket.assigned", alert_labels=labels)))
    assert body["matchers"] == [
        {"name": "alertname", "value": "DiskFull", "isRegex": False, "isEqual": True},
        {"name": "instance", "value": 'db-1"', "isRegex": False, "isEqual": True},
    ]
    from datetime import datetime

    hours = (
        datetime.fromisoformat(body["endsAt"]) - datetime.fromisoformat(body["startsAt"])
    ).total_seconds() / 3600
    assert round(hours, 3) == 4
    assert body["comment"] == 'Ticket #00731 is being worked by Ana "the fixer"'
