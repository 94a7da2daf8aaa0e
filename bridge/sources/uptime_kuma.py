"""Uptime Kuma "Webhook" notification (JSON or form-data body).

Settings → Notifications → Webhook: Post URL ``https://bridge/hooks/<route>?token=…``
(query token) or an Authorization header via "Additional headers".
"""

from __future__ import annotations

from marshmallow import fields

from . import Source, nested, register, template, tolerant

SOURCE = register(
    Source(
        name="uptime_kuma",
        schema=tolerant(
            "UptimeKumaSchema",
            {
                "heartbeat": nested(
                    "KumaHeartbeat",
                    {
                        "status": fields.Integer(required=True),
                        "msg": fields.String(load_default=""),
                    },
                    required=True,
                ),
                "monitor": nested(
                    "KumaMonitor",
                    {"id": fields.Raw(required=True), "name": fields.String(required=True)},
                    required=True,
                ),
                "msg": fields.String(load_default=""),
            },
        ),
        subject=template("uptime_kuma.subject.txt"),
        description=template("uptime_kuma.description.txt"),
        status="{{ 'resolved' if heartbeat.status == 1 else 'firing' }}",
        priority="{{ 'high' if heartbeat.status == 0 else 'low' }}",
        dedup_key="{{ 'monitor:' ~ monitor.id }}",
        accepts_form=True,
        docs="Uptime Kuma webhook notification.",
    )
)
