"""The schemas of what browser-facing routes add: page, redirects, spam defences, widget."""

from __future__ import annotations

from marshmallow import fields, validate

from .fields import (
    CUSTOM_FIELD_ID,
    Duration,
    Strict,
    about,
    limit_string,
    regex,
    url_prefix,
)
from .settings import RULE_SCORES


class PageSchema(Strict):
    """The hosted form page's texts."""

    title = fields.String(metadata=about("The hosted form's heading (default: the route's name)."))
    intro = fields.String(metadata=about("A paragraph under the heading."))
    submit = fields.String(metadata=about("The submit button's text (default `Send`)."))
    lang = fields.String(
        load_default="en",
        validate=validate.Regexp(
            r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$", error="must be a language tag like en or fr-CA"
        ),
        metadata=about("The page's language tag (`lang` attribute)."),
    )
    thanks = fields.String(metadata=about("The thank-you page's text."))
    messages = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata=about(
            "Any text of the page (`errors_summary`, `choice.<value>`, …) and field messages "
            "by their English text, for translations."
        ),
    )


class RedirectSchema(Strict):
    """Where a browser goes after posting."""

    success = fields.URL(
        schemes={"http", "https"},
        require_tld=False,
        metadata=about("Send browsers here after a stored post (else the bridge's thanks page)."),
    )
    error = fields.URL(
        schemes={"http", "https"},
        require_tld=False,
        metadata=about("Send browsers here after a refused post (else the form re-renders)."),
    )
    allow_next = fields.List(
        fields.String(validate=url_prefix),
        metadata=about("URL prefixes a posted `_next` field may redirect into."),
    )


CAPTCHA_PROVIDERS = ("turnstile", "hcaptcha", "recaptcha")


class CaptchaSchema(Strict):
    """A CAPTCHA provider and its keys."""

    provider = fields.String(
        required=True,
        validate=validate.OneOf(CAPTCHA_PROVIDERS),
        metadata=about("Cloudflare Turnstile, hCaptcha or reCAPTCHA (v2, v3)."),
    )
    secret = fields.String(
        required=True,
        validate=validate.Length(min=1),
        metadata=about("The provider's server-side secret."),
    )
    site_key = fields.String(
        required=True,
        validate=validate.Length(min=1),
        metadata=about("The provider's public site key, put on the page."),
    )
    verify_url = fields.URL(
        schemes={"http", "https"},
        require_tld=False,
        metadata=about("Verify somewhere else than the provider's own URL (testing)."),
    )
    min_score = fields.Float(
        validate=validate.Range(min=0, max=1),
        metadata=about(
            "reCAPTCHA v3: the lowest score accepted. Setting it makes the route reCAPTCHA "
            "v3 (a score, no challenge shown); without it reCAPTCHA is v2 (the checkbox)."
        ),
    )
    script_url = fields.URL(
        schemes={"http", "https"},
        require_tld=False,
        metadata=about(
            "Load the provider's script from somewhere else than its own URL (a mirror, "
            "or a stand-in provider for tests). The hosted form and the widget both use it."
        ),
    )
    timeout = Duration(
        load_default=5.0,
        metadata=about("How long to wait for the verifier; no answer refuses the post."),
    )


class ContentRulesSchema(Strict):
    """Scored rules on what a submission says."""

    keywords = fields.List(
        fields.String(validate=validate.Length(min=1)),
        metadata=about("Words or phrases (any case); each one found adds the keyword score."),
    )
    patterns = fields.List(
        fields.String(validate=regex),
        metadata=about("Regular expressions; each one that matches adds the pattern score."),
    )
    max_links = fields.Integer(
        validate=validate.Range(min=0),
        metadata=about("More links than this (http://, https://, www.) add the links score."),
    )
    blocked_domains = fields.List(
        fields.String(validate=validate.Length(min=1)),
        metadata=about(
            "Email domains (and their subdomains) whose senders add the blocked-domain score."
        ),
    )
    disposable_domains = fields.Boolean(
        load_default=False,
        metadata=about(
            "A throwaway-address email domain (the maintained `disposable-email-domains` "
            "list) adds the disposable-domain score."
        ),
    )
    min_length = fields.Integer(
        validate=validate.Range(min=0),
        metadata=about(
            "A message shorter than this (the route's `text` fields together) adds the "
            "too-short score."
        ),
    )
    threshold = fields.Float(
        load_default=5.0,
        validate=validate.Range(min=0, min_inclusive=False),
        metadata=about("A submission scoring this much or more is quarantined."),
    )
    scores = fields.Dict(
        keys=fields.String(validate=validate.OneOf(list(RULE_SCORES))),
        values=fields.Float(validate=validate.Range(min=0)),
        metadata=about(
            "What each rule adds: keyword 3, pattern 3, links 5, blocked_domain 10, "
            "disposable_domain 5, too_short 3 unless set here."
        ),
    )


class SpamSchema(Strict):
    """A browser-facing route's spam defences."""

    honeypot = fields.String(
        validate=validate.Regexp(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"),
        metadata=about(
            "A hidden field people never fill; a post that fills it is answered as if stored "
            "and dropped."
        ),
    )
    min_seconds = Duration(
        metadata=about("A post sooner than this after the form was shown is refused.")
    )
    max_age = Duration(
        load_default=86400.0,
        metadata=about("A form shown longer ago than this asks the person to reload."),
    )
    captcha = fields.Nested(
        CaptchaSchema, metadata=about("Verify a CAPTCHA server-side.", schema=CaptchaSchema)
    )
    content = fields.Nested(
        ContentRulesSchema,
        metadata=about(
            "Content rules, each adding to a score; at the threshold a submission is "
            "quarantined: answered as usual, kept without a ticket for an operator to "
            "release or discard.",
            schema=ContentRulesSchema,
        ),
    )
    keep = fields.Boolean(
        load_default=False,
        metadata=about(
            "Quarantine honeypot and time-token catches too, instead of dropping or refusing "
            "them, so a person a rule was wrong about can be released."
        ),
    )
    quarantine_for = Duration(
        load_default=30 * 86400.0,
        metadata=about("How long a quarantined submission is kept before it is deleted."),
    )


class LimitsSchema(Strict):
    """Rate limits per client address and per route."""

    per_ip = fields.List(
        fields.String(validate=limit_string),
        metadata=about('Rates per client address: `["10/hour", "50/day"]`; over one is 429.'),
    )
    per_route = fields.List(
        fields.String(validate=limit_string),
        metadata=about("Rates for the whole route, whoever posts."),
    )


class WidgetSchema(Strict):
    """The widget's look and its status view."""

    title = fields.String(load_default="Contact support", metadata=about("The panel's heading."))
    launcher = fields.String(load_default="Help", metadata=about("The launcher button's text."))
    color = fields.String(
        load_default="#2455c3",
        validate=validate.Regexp(r"^#[0-9a-fA-F]{3,8}$", error="a colour like #2455c3"),
        metadata=about("The accent colour."),
    )
    position = fields.String(
        load_default="right",
        validate=validate.OneOf(["right", "left"]),
        metadata=about("Which bottom corner the launcher sits in."),
    )
    identity_secret = fields.String(
        validate=validate.Length(min=16),
        metadata=about(
            "Verifies the HMAC of a signed-in user's email, so the widget can pre-fill and "
            "lock name and email."
        ),
    )
    page_url_field = fields.String(
        validate=CUSTOM_FIELD_ID,
        metadata=about("Put the page the person wrote from into this custom field."),
    )
    user_agent_field = fields.String(
        validate=CUSTOM_FIELD_ID,
        metadata=about("Put the person's browser (User-Agent) into this custom field."),
    )
    status_cache = Duration(
        load_default=30.0,
        metadata=about("How long a ticket's status, read through the list API, is reused."),
    )
    receipt_max_age = Duration(
        load_default=90 * 86400.0,
        metadata=about("How long a receipt lets the person see their request's status."),
    )
