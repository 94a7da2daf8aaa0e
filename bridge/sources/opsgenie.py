"""Opsgenie outgoing Webhook integration (Create, Close, Acknowledge, …).

Integrations → Webhook: URL ``https://bridge/hooks/<route>``, "Add Alert Description to
Payload", custom header ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

from marshmallow import fields

from . import Source, nested, register, template, tolerant

SOURCE = register(
    Source(
        name="opsgenie",
        schema=tolerant(
            "OpsgenieSchema",
            {
                "action": fields.String(required=True),
                "alert": nested(
                    "OpsgenieAlert",
                    {
                        "alertId": fields.String(required=True),
                        "message": fields.String(required=True),
                    },
                    required=True,
                ),
            },
        ),
        subject=template("opsgenie.subject.txt"),
        description=template("opsgenie.description.txt"),
        status="{{ 'resolved' if action|lower in ('close', 'delete') else 'firing' }}",
        priority="{{ alert.priority or '' }}",
        priority_map={
            "p1": "high",
            "p2": "high",
            "p3": "normal",
            "p4": "low",
            "p5": "low",
            "1": "high",
            "2": "high",
            "3": "normal",
            "4": "low",
            "5": "low",
        },
        dedup_key="{{ 'alert:' ~ (alert.alias or alert.alertId) }}",
        docs="Opsgenie webhook integration.",
    )
)
