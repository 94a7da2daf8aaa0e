"""Alertmanager notifications and a hook route to post them to."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from bridge.app import proprofs_client
from bridge.config import Settings
from bridge.outbox.store import SubmissionStore
from bridge.outbox.worker import DeliverySettings, Worker
from bridge.proprofs.emulator import EmulatorServer
from tests.support.configs import settings_with

PAYLOADS = Path(__file__).resolve().parents[1] / "fixtures" / "payloads"
FIRING = json.loads(
    (PAYLOADS / "alertmanager" / "zulip_alertmanager_alert_grouped_firing.json").read_text()
)
RESOLVED = {
    **FIRING,
    "status": "resolved",
    "alerts": [{**a, "status": "resolved"} for a in FIRING["alerts"]],
}


def group(name: str) -> dict[str, Any]:
    """An Alertmanager notification for the group ``alertname=name``."""
    body = copy.deepcopy(FIRING)
    body["groupKey"] = f'{{}}:{{alertname="{name}"}}'
    body["commonLabels"] = {"alertname": name, "severity": "critical"}
    body["groupLabels"] = {"alertname": name}
    for alert in body["alerts"]:
        alert["labels"] = {**alert["labels"], "alertname": name}
    return body


def config(emulator: EmulatorServer, store_url: str, extra: str = "") -> Settings:
    """An ``alerts`` hook route (Alertmanager, no ticket-check cache), plus ``extra`` routes."""
    return settings_with(
        emulator,
        store_url,
        f"""
routes:
  alerts:
    kind: hook
    source: alertmanager
    ticket_check_ttl: 0
    ticket: {{email: alerts@example.com, inbox: IB238-500}}
{extra}
""",
    )


def post(
    client: FlaskClient, body: dict[str, Any], route: str = "alerts"
) -> tuple[int, dict[str, Any]]:
    """Post a notification; its status and JSON answer."""
    response = client.post(f"/hooks/{route}", json=body)
    return response.status_code, response.get_json()


def deliver(store: SubmissionStore, settings: Settings) -> None:
    """Deliver everything waiting, until the outbox is idle."""
    with proprofs_client(settings) as client:
        Worker(store, client, DeliverySettings(poll_interval=0.05)).run(
            until_idle=True, max_seconds=20
        )


def due_now(store: SubmissionStore) -> None:
    """Make everything waiting due now (past a retry's or an update's wait)."""
    from bridge.outbox.tables import submissions

    with store.db.write() as conn:
        conn.execute(
            submissions.update().where(submissions.c.state == "pending").values(next_attempt_at=0.0)
        )
