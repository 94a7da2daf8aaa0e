"""Azure Monitor action group webhook with the common alert schema.

Action group → Webhook action, URL ``https://bridge/hooks/<route>?token=…``, "Enable the
common alert schema" on.
"""

from __future__ import annotations

from marshmallow import fields, validate

from . import Source, nested, register, template, tolerant

SOURCE = register(
    Source(
        name="azure_monitor",
        schema=tolerant(
            "AzureMonitorSchema",
            {
                "schemaId": fields.String(
                    required=True, validate=validate.Equal("azureMonitorCommonAlertSchema")
                ),
                "data": nested(
                    "AzureData",
                    {
                        "essentials": nested(
                            "AzureEssentials",
                            {
                                "alertId": fields.String(required=True),
                                "alertRule": fields.String(required=True),
                                "monitorCondition": fields.String(required=True),
                                "severity": fields.String(load_default=""),
                            },
                            required=True,
                        ),
                    },
                    required=True,
                ),
            },
        ),
        subject=template("azure_monitor.subject.txt"),
        description=template("azure_monitor.description.txt"),
        status="{{ 'resolved' if data.data.essentials.monitorCondition == 'Resolved' "
        "else 'firing' }}",
        priority="{{ data.data.essentials.severity }}",
        priority_map={
            "sev0": "high",
            "sev1": "high",
            "sev2": "normal",
            "sev3": "low",
            "sev4": "low",
        },
        dedup_key="{{ 'alert:' ~ data.data.essentials.alertId }}",
        docs="Azure Monitor common alert schema.",
    )
)
