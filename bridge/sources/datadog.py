"""Datadog Webhooks integration, default payload ($ID, $TITLE, $BODY, $EVENT_TYPE, …).

Integrations → Webhooks: URL ``https://bridge/hooks/<route>``, default payload (or add
"alert_id": "$ALERT_ID", "alert_transition": "$ALERT_TRANSITION", "alert_priority":
"$ALERT_PRIORITY" for better grouping); custom header ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

from marshmallow import fields

from . import Source, register, template, tolerant

SOURCE = register(
    Source(
        name="datadog",
        schema=tolerant(
            "DatadogSchema",
            {
                "id": fields.Raw(),
                "title": fields.String(required=True),
                "body": fields.String(load_default=""),
                "event_type": fields.String(load_default=""),
                "date": fields.Raw(),
                "alert_id": fields.Raw(),
                "alert_transition": fields.String(load_default=""),
                "alert_priority": fields.String(load_default=""),
                "link": fields.String(load_default=""),
            },
        ),
        subject=template("datadog.subject.txt"),
        description=template("datadog.description.txt"),
        status="{{ 'resolved' if alert_transition|lower == 'recovered' or "
        "title.startswith('[Recovered') else 'firing' }}",
        priority="{{ alert_priority or ('high' if title.startswith('[Triggered') else "
        "'normal' if title.startswith('[Warn') else '') }}",
        priority_map={
            "p1": "high",
            "p2": "high",
            "p3": "normal",
            "p4": "low",
            "p5": "low",
            "high": "high",
            "normal": "normal",
        },
        dedup_key="{{ 'alert:' ~ alert_id if alert_id else "
        "title|replace('[Triggered] ', '')|replace('[Recovered] ', '')|replace('[Warn] ', '') }}",
        docs="Datadog webhook, default payload.",
    )
)
