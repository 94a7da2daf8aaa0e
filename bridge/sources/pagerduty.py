"""PagerDuty v3 webhooks (incident.triggered, .acknowledged, .resolved, …).

Integrations → Generic Webhooks (v3): URL ``https://bridge/hooks/<route>``; the
subscription's signing secret verifies X-PagerDuty-Signature.
"""

from __future__ import annotations

from marshmallow import fields

from . import Source, nested, register, template, tolerant

SOURCE = register(
    Source(
        name="pagerduty",
        schema=tolerant(
            "PagerDutySchema",
            {
                "event": nested(
                    "PagerDutyEvent",
                    {
                        "event_type": fields.String(required=True),
                        "data": nested(
                            "PagerDutyData",
                            {
                                "id": fields.String(required=True),
                                "title": fields.String(load_default=""),
                            },
                            required=True,
                        ),
                    },
                    required=True,
                ),
            },
        ),
        subject=template("pagerduty.subject.txt"),
        description=template("pagerduty.description.txt"),
        status="{{ 'resolved' if event.event_type == 'incident.resolved' else 'firing' }}",
        priority="{{ event.data.urgency or '' }}",
        priority_map={"high": "high", "low": "low"},
        dedup_key="{{ 'incident:' ~ event.data.id }}",
        docs="PagerDuty v3 webhook subscription.",
    )
)
