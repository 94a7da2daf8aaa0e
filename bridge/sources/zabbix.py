"""Zabbix webhook media type (a script that posts the event's macros as JSON).

Media type Webhook with parameters hostname={HOST.NAME}, severity={EVENT.SEVERITY},
status={EVENT.STATUS}, item={ITEM.NAME1} is {ITEM.VALUE1}, trigger={TRIGGER.NAME},
link={$ZABBIX.URL}/tr_events.php?triggerid={TRIGGER.ID}&eventid={EVENT.ID},
event_id={EVENT.ID}; the script POSTs them to ``https://bridge/hooks/<route>`` with
an Authorization header.
"""

from __future__ import annotations

from marshmallow import fields

from . import Source, register, template, tolerant

SOURCE = register(
    Source(
        name="zabbix",
        schema=tolerant(
            "ZabbixSchema",
            {
                "hostname": fields.String(required=True),
                "trigger": fields.String(required=True),
                "status": fields.String(required=True),
                "severity": fields.String(load_default=""),
                "item": fields.String(load_default=""),
                "link": fields.String(load_default=""),
                "event_id": fields.Raw(),
            },
        ),
        subject=template("zabbix.subject.txt"),
        description=template("zabbix.description.txt"),
        status="{{ 'resolved' if status|upper in ('OK', 'RESOLVED') else 'firing' }}",
        priority="{{ severity }}",
        priority_map={
            "disaster": "high",
            "high": "high",
            "average": "normal",
            "warning": "normal",
            "information": "low",
            "not classified": "low",
        },
        dedup_key="{{ 'event:' ~ event_id if event_id else hostname ~ ':' ~ trigger }}",
        docs="Zabbix webhook media type.",
    )
)
