"""Prometheus Alertmanager webhook (v4, and the legacy v3): grouped alerts, firing and resolved.

alertmanager.yml: a ``webhook_configs`` receiver with ``url: https://bridge/hooks/<route>``
and ``http_config: {authorization: {credentials: <token>}}`` (bearer auth).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import fields, validate

from . import SEVERITY_MAP, Source, nested, register, template, tolerant


def split_alerts(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per-alert mode: one notification per alert, each with that alert's labels as common."""
    out = []
    for alert in payload.get("alerts") or []:
        one = dict(payload)
        one.update(
            alerts=[alert],
            status=alert.get("status") or payload.get("status"),
            commonLabels=alert.get("labels") or {},
            commonAnnotations=alert.get("annotations") or {},
        )
        out.append(one)
    return out


ALERT: dict[str, fields.Field[Any]] = {
    "status": fields.String(),
    "labels": fields.Dict(keys=fields.String(), load_default=dict),
    "annotations": fields.Dict(keys=fields.String(), load_default=dict),
    "startsAt": fields.String(),
    "endsAt": fields.String(),
    "generatorURL": fields.String(),
    "fingerprint": fields.String(),
}

SOURCE = register(
    Source(
        name="alertmanager",
        schema=tolerant(
            "AlertmanagerSchema",
            {
                "status": fields.String(
                    required=True, validate=validate.OneOf(["firing", "resolved"])
                ),
                "alerts": fields.List(
                    nested("AlertmanagerAlert", ALERT),
                    required=True,
                    validate=validate.Length(min=1),
                ),
                "groupKey": fields.Raw(),
                "receiver": fields.String(),
                "groupLabels": fields.Dict(load_default=dict),
                "commonLabels": fields.Dict(load_default=dict),
                "commonAnnotations": fields.Dict(load_default=dict),
                "externalURL": fields.String(load_default=""),
                "truncatedAlerts": fields.Integer(load_default=0),
            },
        ),
        subject=template("alertmanager.subject.txt"),
        description=template("alertmanager.description.txt"),
        status="{{ status }}",
        priority="{{ commonLabels.severity or alerts[0].labels.severity or '' }}",
        priority_map=SEVERITY_MAP,
        dedup_key="{{ groupKey or ((groupLabels or commonLabels or "
        "{'alertname': alerts[0].labels.alertname})|dictsort|tojson) }}",
        alert_dedup_key="{{ alerts[0].fingerprint or alerts[0].labels|dictsort|tojson|hash }}",
        split=split_alerts,
        docs="Alertmanager webhook_configs receiver; bearer auth via http_config.authorization.",
    )
)
