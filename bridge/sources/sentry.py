"""Sentry: the integration-platform issue webhook and issue-alert (event_alert) webhooks.

Internal integration with the Issue (and Alert Rule Action) webhooks, URL
``https://bridge/hooks/<route>``; signed with the client secret (Sentry-Hook-Signature).
"""

from __future__ import annotations

from marshmallow import fields

from . import RESOLVED_PREFIX, Source, nested, register, template, tolerant

SOURCE = register(
    Source(
        name="sentry",
        schema=tolerant(
            "SentrySchema",
            {
                "action": fields.String(required=True),
                "data": nested(
                    "SentryData",
                    {
                        "issue": nested(
                            "SentryIssue",
                            {
                                "id": fields.Raw(required=True),
                                "title": fields.String(required=True),
                            },
                        ),
                        "event": nested("SentryEvent", {"title": fields.String(required=True)}),
                        "triggered_rule": fields.String(),
                    },
                    required=True,
                ),
                "actor": fields.Dict(load_default=dict),
            },
        ),
        subject=template("sentry.subject.txt"),
        description=template("sentry.description.txt"),
        status="{{ 'resolved' if action == 'resolved' else 'firing' }}",
        priority="{{ (data.data.issue or data.data.event or {}).level or '' }}",
        priority_map={
            "fatal": "high",
            "error": "high",
            "warning": "normal",
            "info": "low",
            "debug": "low",
            "sample": "low",
        },
        dedup_key="{{ 'issue:' ~ data.data.issue.id if data.data.issue else 'issue:' ~ "
        "(data.data.event.issue_id or data.data.event.event_id or data.data.event.title) }}",
        resolved_prefix=RESOLVED_PREFIX,
        docs="Sentry internal integration: issue and alert webhooks.",
    )
)
