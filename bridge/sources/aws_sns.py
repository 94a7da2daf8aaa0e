"""AWS SNS HTTP(S) subscriptions: CloudWatch alarms inside SNS notifications.

SNS posts JSON as ``text/plain``; its messages are signed (SignatureVersion 1 and 2)
and checked against the signing certificate; subscription confirmations are honoured
only for the topic ARNs the route lists (``auth: {sns: {topics: [...]}}``).
"""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from .. import jsonbody
from . import Source, register, template, tolerant


def unwrap(payload: Any) -> Any:
    """The SNS message itself (also from a Lambda-style Records envelope), with its
    Message decoded when it is a CloudWatch alarm."""
    if (
        isinstance(payload, dict)
        and isinstance(payload.get("Records"), list)
        and payload["Records"]
    ):
        payload = payload["Records"][0].get("Sns", payload)
    if isinstance(payload, dict) and isinstance(payload.get("Message"), str):
        try:
            alarm = jsonbody.loads(payload["Message"])
        except jsonbody.Unacceptable:
            raise  # JSON, but nothing a sender sends (too deep, numbers Python cannot hold)
        except ValueError:
            alarm = None  # a plain-text message
        if isinstance(alarm, dict):
            payload = {**payload, "alarm": alarm}
    return payload


SOURCE = register(
    Source(
        name="aws_sns",
        schema=tolerant(
            "SnsSchema",
            {
                "Type": fields.String(
                    required=True,
                    validate=validate.OneOf(
                        ["Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"]
                    ),
                ),
                "MessageId": fields.String(required=True),
                "TopicArn": fields.String(required=True),
                "Message": fields.String(required=True),
                "Subject": fields.String(allow_none=True),
                "Timestamp": fields.String(),
                "alarm": fields.Dict(),
            },
        ),
        subject=template("aws_sns.subject.txt"),
        description=template("aws_sns.description.txt"),
        status="{{ 'resolved' if alarm and alarm.NewStateValue == 'OK' else 'firing' }}",
        priority="{{ 'high' if alarm and alarm.NewStateValue == 'ALARM' else 'normal' }}",
        dedup_key="{{ 'alarm:' ~ (alarm.AlarmArn or alarm.AlarmName) if alarm else "
        "'message:' ~ MessageId }}",
        preprocess=unwrap,
        docs="AWS SNS HTTPS subscription (CloudWatch alarms).",
    )
)
