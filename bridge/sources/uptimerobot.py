"""UptimeRobot webhook alert contact (JSON body with *monitorID*-style variables, or a form).

Alert contact of type Webhook: URL ``https://bridge/hooks/<route>?token=…``, "Send as JSON"
with a body such as {"monitor_id": "*monitorID*", "monitor_url": "*monitorURL*",
"monitor_friendly_name": "*monitorFriendlyName*", "alert_type": "*alertType*",
"alert_type_friendly_name": "*alertTypeFriendlyName*", "alert_details": "*alertDetails*",
"alert_friendly_duration": "*alertFriendlyDuration*"}.
"""

from __future__ import annotations

from marshmallow import fields

from . import Source, register, template, tolerant

SOURCE = register(
    Source(
        name="uptimerobot",
        schema=tolerant(
            "UptimeRobotSchema",
            {
                "monitor_friendly_name": fields.String(required=True),
                "monitor_url": fields.String(load_default=""),
                "monitor_id": fields.Raw(),
                "alert_type": fields.Raw(required=True),
                "alert_type_friendly_name": fields.String(load_default=""),
                "alert_details": fields.String(load_default=""),
                "alert_friendly_duration": fields.String(load_default=""),
            },
        ),
        subject=template("uptimerobot.subject.txt"),
        description=template("uptimerobot.description.txt"),
        status="{{ 'resolved' if alert_type|string == '2' else 'firing' }}",
        priority="{{ 'high' if alert_type|string == '1' else 'normal' }}",
        dedup_key="{{ 'monitor:' ~ (monitor_id or monitor_url or monitor_friendly_name) }}",
        accepts_form=True,
        docs="UptimeRobot webhook alert contact.",
    )
)
