"""The event recipes on docs/events.md, loaded as a user's config would load them, and a
real event to render them with."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from bridge.config import settings_from_text
from bridge.outbox.events import Event
from bridge.proprofs.models import Label, Message, Person, Ticket

ROOT = Path(__file__).resolve().parents[2]
ENV = {
    "OPS_EVENTS_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "SLACK_WEBHOOK_URL": "https://hooks.slack.example/services/T0/B0/X",
    "TEAMS_WEBHOOK_URL": "https://teams.example/webhook/x",
}


def recipes() -> dict[str, Any]:
    """Every subscriber the page's recipes configure."""
    page = (ROOT / "docs" / "events.md").read_text().split("## Recipes", 1)[1]
    found: dict[str, Any] = {}
    for block in re.findall(r"```yaml\n(.*?)```", page, re.S):
        found.update(yaml.safe_load(block)["events"])
    return found


def subscribers() -> dict[str, Any]:
    config = {
        "proprofs": {"account_email": "a@example.com", "token": "t0ken-for-recipes"},
        "mirror": {},
        "events": recipes(),
        "routes": {
            "alertmanager": {
                "kind": "hook",
                "source": "alertmanager",
                "ticket": {"email": "alerts@example.com"},
            }
        },
    }
    return dict(settings_from_text(yaml.safe_dump(config), env=ENV).events)


def sample(kind: str, **extra: Any) -> str:
    from datetime import UTC, datetime

    now = datetime(2026, 12, 8, 9, 30, tzinfo=UTC)
    agent = Person("SF008-10650", 'Ana "the fixer"', "ana@helpdesk.example")
    ticket = Ticket(
        "00731",
        "alerts@example.com",
        "",
        "",
        '[FIRING:1] DiskFull db-1 "prod"',
        (Message("Disk full", now, "alerts@example.com", "support"),),
        agent,
        "high",
        "",
        None,
        (),
        (Label("1", "ops"),),
        "open",
        False,
        now,
        now,
    )
    event = Event(kind, ticket, "alertmanager", "pb-" + "0" * 20, extra)
    return json.dumps(event.payload(now.timestamp()))
