"""The schemas of a hook route's credentials: bearer, basic, URL token, HMAC, SNS."""

from __future__ import annotations

from marshmallow import fields, validate

from .fields import SECRET_LENGTH, Duration, Strict, about


class BasicAuthSchema(Strict):
    """HTTP basic credentials."""

    username = fields.String(
        required=True, validate=validate.Length(min=1), metadata=about("The user name.")
    )
    password = fields.String(required=True, validate=SECRET_LENGTH, metadata=about("The password."))


class QueryAuthSchema(Strict):
    """A token in the URL, for senders that can set nothing else."""

    param = fields.String(
        load_default="token",
        validate=validate.Regexp(r"^[A-Za-z0-9_-]+$"),
        metadata=about("The query parameter that carries the token (`?token=…`)."),
    )
    token = fields.String(
        required=True, validate=SECRET_LENGTH, metadata=about("The token it must equal.")
    )


class HmacAuthSchema(Strict):
    """A signature over the raw body, in one of the senders' schemes."""

    scheme = fields.String(
        required=True,
        validate=validate.OneOf(["grafana", "sentry", "pagerduty", "standard"]),
        metadata=about("Whose signature format: Grafana, Sentry, PagerDuty or Standard Webhooks."),
    )
    secret = fields.String(
        required=True, validate=SECRET_LENGTH, metadata=about("The shared signing secret.")
    )
    header = fields.String(
        metadata=about("Grafana's signature header, when not `X-Grafana-Alerting-Signature`.")
    )
    timestamp_header = fields.String(
        metadata=about(
            "A header holding the signing time, signed with the body (Grafana's "
            "`X-Grafana-Alerting-Timestamp`); stale requests are refused."
        )
    )
    tolerance = fields.Float(
        load_default=300.0,
        validate=validate.Range(min=1, max=86400),
        metadata=about("Seconds a signed timestamp may be away from now."),
    )


class SnsAuthSchema(Strict):
    """AWS SNS: the topics taken, and the signature check."""

    topics = fields.List(
        fields.String(
            validate=validate.Regexp(
                r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]+$",
                error="must be an SNS topic ARN",
            )
        ),
        load_default=list,
        metadata=about(
            "Topic ARNs the route takes messages from (every type; required while "
            "signatures are verified)."
        ),
    )
    max_age = Duration(
        load_default=3600.0,
        metadata=about("A message whose Timestamp is older than this is refused as a replay."),
    )
    verify = fields.Boolean(
        load_default=True,
        metadata=about(
            "Check each message's signature with its signing certificate; `false` is warned "
            "about by `check-config`."
        ),
    )


class HookAuthSchema(Strict):
    """A hook route's credentials: one or more of the kinds above."""

    bearer = fields.String(
        validate=SECRET_LENGTH, metadata=about("`Authorization: Bearer <token>` must carry this.")
    )
    basic = fields.Nested(
        BasicAuthSchema, metadata=about("HTTP basic authentication.", schema=BasicAuthSchema)
    )
    query = fields.Nested(
        QueryAuthSchema,
        metadata=about("A token in the URL's query string.", schema=QueryAuthSchema),
    )
    hmac = fields.Nested(
        HmacAuthSchema,
        metadata=about("An HMAC signature of the raw body.", schema=HmacAuthSchema),
    )
    sns = fields.Nested(
        SnsAuthSchema,
        metadata=about(
            "AWS SNS message signatures (on by default for `source: aws_sns`).",
            schema=SnsAuthSchema,
        ),
    )
