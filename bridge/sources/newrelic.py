"""New Relic workflow webhook, default payload template.

Alerts → Destinations → Webhook (URL ``https://bridge/hooks/<route>``, bearer token),
used by a workflow with the default payload.
"""

from __future__ import annotations

from marshmallow import fields

from . import Source, register, template, tolerant

SOURCE = register(
    Source(
        name="newrelic",
        schema=tolerant(
            "NewRelicSchema",
            {
                "id": fields.String(required=True),
                "title": fields.String(required=True),
                "state": fields.String(required=True),
                "priority": fields.String(load_default=""),
                "issueUrl": fields.String(load_default=""),
            },
        ),
        subject=template("newrelic.subject.txt"),
        description=template("newrelic.description.txt"),
        status="{{ 'resolved' if state|upper == 'CLOSED' else 'firing' }}",
        priority="{{ priority }}",
        priority_map={"critical": "high", "high": "high", "medium": "normal", "low": "low"},
        dedup_key="{{ 'issue:' ~ id }}",
        docs="New Relic workflow webhook.",
    )
)
