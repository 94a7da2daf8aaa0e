"""Grafana alerting webhook: unified alerting (8+) and the legacy (pre-8) format.

Contact point: Webhook, URL ``https://bridge/hooks/<route>``; authenticate with the
Authorization header (bearer), basic auth, or the HMAC signature setting.
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validates_schema

from . import SEVERITY_MAP, Source, nested, register, template, tolerant
from .alertmanager import ALERT, split_alerts

Base = tolerant(
    "GrafanaBase",
    {
        "status": fields.String(),
        "alerts": fields.List(
            nested(
                "GrafanaAlert",
                {
                    **ALERT,
                    "silenceURL": fields.String(),
                    "dashboardURL": fields.String(),
                    "panelURL": fields.String(),
                    "valueString": fields.String(),
                },
            )
        ),
        "groupKey": fields.Raw(),
        "groupLabels": fields.Dict(load_default=dict),
        "commonLabels": fields.Dict(load_default=dict),
        "commonAnnotations": fields.Dict(load_default=dict),
        "externalURL": fields.String(load_default=""),
        "title": fields.String(load_default=""),
        "message": fields.String(load_default=""),
        "state": fields.String(load_default=""),
        "ruleName": fields.String(),
        "ruleId": fields.Raw(),
        "ruleUrl": fields.String(),
        "evalMatches": fields.List(fields.Dict(), load_default=list),
        "orgId": fields.Raw(),
    },
)


class GrafanaSchema(Base):  # type: ignore[misc,valid-type]
    """Grafana's alert webhook (unified alerting, or legacy)."""

    @validates_schema
    def one_format(self, data: dict[str, Any], **_: Any) -> None:
        """Refuse a payload that is neither format."""
        if not data.get("alerts") and not data.get("ruleName"):
            raise ValidationError(
                "Not a Grafana alert: expected alerts (unified alerting) or "
                "ruleName (legacy alerting).",
                "alerts",
            )


SOURCE = register(
    Source(
        name="grafana",
        schema=GrafanaSchema,
        subject=template("grafana.subject.txt"),
        description=template("grafana.description.txt"),
        status="{{ (status or '') if alerts else ('resolved' if state == 'ok' else 'firing') }}",
        priority="{{ commonLabels.severity or (alerts[0].labels.severity if alerts else '') "
        "or ('high' if state == 'alerting' else '') }}",
        priority_map=SEVERITY_MAP,
        dedup_key="{{ groupKey if alerts else 'rule:' ~ ruleId ~ ':' ~ (orgId or '') }}",
        alert_dedup_key="{{ alerts[0].fingerprint or alerts[0].labels|dictsort|tojson|hash }}",
        split=split_alerts,
        docs="Grafana contact point of type Webhook.",
    )
)
