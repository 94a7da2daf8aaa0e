"""The schema of one route: its kind, fields, ticket, and each part the kinds take."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from ..attachments import DEFAULT_TYPES, KNOWN_TYPES, Limits
from ..declared import FIELD_TYPES
from ..mapping import UNKNOWN_POLICIES
from ..proprofs.models import PRIORITIES
from ..sources import source_names
from .auth import HookAuthSchema
from .browser import (
    LimitsSchema,
    PageSchema,
    RedirectSchema,
    SpamSchema,
    WidgetSchema,
)
from .fields import (
    CUSTOM_FIELD_ID,
    Duration,
    Size,
    Strict,
    about,
    module_class,
    regex,
)
from .settings import DEFAULT_MAX_BODY, KINDS


class FieldSpecSchema(Strict):
    """One declared field of a form or widget."""

    type = fields.String(
        required=True,
        validate=validate.OneOf(FIELD_TYPES),
        metadata=about("What the field holds; it decides validation and the form control."),
    )
    required = fields.Boolean(load_default=False, metadata=about("Refuse a submission without it."))
    max_length = fields.Integer(
        validate=validate.Range(min=1), metadata=about("Longest value accepted, in characters.")
    )
    min_length = fields.Integer(
        validate=validate.Range(min=0), metadata=about("Shortest value accepted, in characters.")
    )
    choices = fields.List(
        fields.String(),
        validate=validate.Length(min=1),
        metadata=about("The values a `choice` (or `list`) field allows."),
    )
    pattern = fields.String(
        validate=regex, metadata=about("A regular expression the whole value must match.")
    )
    default = fields.Raw(
        allow_none=True, metadata=about("The value used when the field is not sent.")
    )
    label = fields.String(metadata=about("The label shown on the hosted form and the widget."))
    help = fields.String(metadata=about("A hint shown under the field."))
    placeholder = fields.String(metadata=about("Placeholder text inside the empty control."))
    custom_field = fields.String(
        validate=CUSTOM_FIELD_ID,
        metadata=about("Also put the value into this ProProfs custom field (`CF007-07`)."),
    )

    @validates_schema
    def consistent(self, data: dict[str, Any], **_: Any) -> None:
        """Refuse settings that contradict each other."""
        if data.get("required") and "default" in data:
            raise ValidationError(
                "a required field has no default: drop one of required and default", "default"
            )
        if data.get("type") == "choice" and not data.get("choices"):
            raise ValidationError("a choice field needs choices", "choices")
        if data.get("choices") and data.get("type") not in ("choice", "list"):
            raise ValidationError("only choice and list fields take choices", "choices")
        if data.get("type") == "file":
            for key in ("default", "pattern", "max_length", "min_length", "custom_field"):
                if key in data:
                    raise ValidationError(
                        f"a file field takes no {key}; its limits are the route's attachments",
                        key,
                    )


TICKET_TEXT_FIELDS = (
    "subject",
    "description",
    "name",
    "email",
    "phone",
    "priority",
    "staff",
    "inbox",
)


def _ticket_text(what: str) -> fields.String:
    return fields.String(metadata=about(f"{what} A literal or a template."))


class TicketSpecSchema(Strict):
    """How a submission becomes a ticket: templates per ticket field."""

    subject = _ticket_text("The ticket's subject (one line, at most 255 characters).")
    description = _ticket_text(
        "The ticket's first message; the submission's reference footer is added after it."
    )
    name = _ticket_text("The requester's name.")
    email = _ticket_text(
        "The requester's email. ProProfs requires one: a hook route needs a fixed address, or "
        "a template with a `default('…')`."
    )
    phone = _ticket_text("The requester's phone number.")
    priority = _ticket_text(
        "The priority; the rendered value is looked up in `priority_map`, then must be one "
        f"of: {', '.join(PRIORITIES)}."
    )
    staff = _ticket_text("The ProProfs staff id to assign the ticket to (`ST007-007`).")
    inbox = _ticket_text("The ProProfs inbox id the ticket goes to (`IB238-436`).")
    custom_fields = fields.Dict(
        keys=fields.String(validate=CUSTOM_FIELD_ID),
        values=fields.String(),
        metadata=about('ProProfs custom fields by id: `{CF007-07: "{{ topic }}"}`.'),
    )
    priority_map = fields.Dict(
        keys=fields.String(),
        values=fields.String(validate=validate.OneOf(PRIORITIES)),
        metadata=about(
            "Rendered priority (a sender's severity, a form's topic) → ProProfs priority; "
            "merged over a sender preset's own map."
        ),
    )
    priority_default = fields.String(
        validate=validate.OneOf(PRIORITIES),
        metadata=about("The priority when the rendered value maps to nothing."),
    )
    max_lengths = fields.Dict(
        keys=fields.String(validate=validate.OneOf([*TICKET_TEXT_FIELDS, "custom_field"])),
        values=fields.Integer(validate=validate.Range(min=10, max=1_000_000)),
        metadata=about("Cut a rendered value to this many characters, with a visible marker."),
    )
    ref_field = fields.String(
        validate=CUSTOM_FIELD_ID,
        metadata=about("Also store the submission's reference (`pb-…`) in this custom field."),
    )


FORM_AND_WIDGET = ("form", "widget")


class AttachmentsSchema(Strict):
    """What files a route takes."""

    max_size = Size(
        load_default=Limits.max_size,
        metadata=about("The largest file accepted (over it: 413 naming the file)."),
    )
    max_files = fields.Integer(
        load_default=Limits.max_files,
        validate=validate.Range(min=1, max=50),
        metadata=about("How many files one submission may carry."),
    )
    max_total = Size(
        load_default=Limits.max_total,
        metadata=about("The most all of one submission's files may add up to."),
    )
    types = fields.List(
        fields.String(validate=validate.OneOf(list(KNOWN_TYPES))),
        validate=validate.Length(min=1),
        load_default=lambda: list(DEFAULT_TYPES),
        metadata=about(
            "The types accepted, read from each file's content (never its name): "
            f"{', '.join(KNOWN_TYPES)}. HTML and SVG are only ever served as downloads."
        ),
    )

    @validates_schema
    def consistent(self, data: dict[str, Any], **_: Any) -> None:
        """Refuse limits that contradict each other."""
        if data.get("max_total", 0) < data.get("max_size", 0):
            raise ValidationError("max_total cannot be less than max_size", "max_total")
        if data.get("max_total", 0) > 200_000_000:
            raise ValidationError("at most 200MB of files per submission", "max_total")


class HeartbeatSchema(Strict):
    """The notification a hook route expects, and how often."""

    match = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        load_default=lambda: {"alertname": "Watchdog"},
        validate=validate.Length(min=1),
        metadata=about(
            "Labels a notification must carry to be the heartbeat (default "
            "`{alertname: Watchdog}`); it never becomes a ticket."
        ),
    )
    every = Duration(
        required=True, metadata=about("How often the sender repeats it (its repeat interval).")
    )
    grace = Duration(
        load_default=300.0, metadata=about("How long past `every` before it counts as silent.")
    )
    email = fields.Email(
        metadata=about("The requester of the silence ticket (default: the ProProfs account).")
    )
    inbox = fields.String(metadata=about("The inbox of the silence ticket."))


class StormSchema(Strict):
    """How many new alert groups a window may ticket one by one."""

    max_new = fields.Integer(
        required=True,
        validate=validate.Range(min=1, max=10000),
        metadata=about("New alert groups per window that each get their own ticket."),
    )
    window = Duration(
        load_default=300.0, metadata=about("The window (fixed, aligned to the clock).")
    )


#: What the update block's custom fields can hold.
UPDATE_FIELDS = ("state", "occurrences", "first_seen", "last_seen")


class UpdateFieldsSchema(Strict):
    """Custom fields the bridge keeps current on an alert group's ticket."""

    state = fields.String(
        validate=CUSTOM_FIELD_ID,
        metadata=about("Gets the group's state: `firing`, `resolved` or `firing again`."),
    )
    occurrences = fields.String(
        validate=CUSTOM_FIELD_ID,
        metadata=about("Gets how many firing notifications the ticket has had."),
    )
    first_seen = fields.String(
        validate=CUSTOM_FIELD_ID,
        metadata=about("Gets when the group first fired for this ticket (UTC)."),
    )
    last_seen = fields.String(
        validate=CUSTOM_FIELD_ID,
        metadata=about("Gets when the bridge last heard of the group (UTC)."),
    )


class UpdateSchema(Strict):
    """How an alert group's open ticket is kept current (`update: {}` takes every default)."""

    every = Duration(
        load_default=60.0,
        metadata=about(
            "At most one update per ticket this often; it carries the latest state "
            "(0: as soon as each one is sent)."
        ),
    )
    priority = fields.String(
        load_default="raise",
        validate=validate.OneOf(["raise", "follow", "keep"]),
        metadata=about(
            "When a notification's severity maps to another priority: `raise` the "
            "ticket's (never lower it), `follow` it up and down, or `keep` it."
        ),
    )
    resolved_prefix = fields.String(
        validate=validate.Length(max=60),
        metadata=about(
            "Put before the subject while the group is resolved (default: `[RESOLVED] `, or "
            "nothing for a preset whose subject already says the state)."
        ),
    )
    resolved_suffix = fields.String(
        load_default="",
        validate=validate.Length(max=60),
        metadata=about("Put after the subject while the group is resolved."),
    )
    status_block = fields.Boolean(
        load_default=True,
        metadata=about(
            "End the description with the group's status: state, first and last seen, "
            "notifications, incident page."
        ),
    )
    fields_ = fields.Nested(
        UpdateFieldsSchema,
        data_key="fields",
        attribute="fields",
        load_default=dict,
        metadata=about(
            "Custom fields that get the group's state, count and times.",
            schema=UpdateFieldsSchema,
        ),
    )


class RetentionSchema(Strict):
    """How long personal content stays after delivery."""

    scrub_after = Duration(
        metadata=about(
            "Remove the personal content (the ticket draft: names, emails, phone numbers, "
            "messages) of delivered submissions this long after delivery, keeping what "
            "exactly-once needs (reference, ticket id, dedup key, state, times)."
        )
    )
    dead_after = Duration(
        metadata=about(
            "The same for dead submissions, this long after they died (a scrubbed dead "
            "submission can no longer be replayed)."
        )
    )


class RouteSchema(Strict):
    """One route: every key any kind takes (``kinds`` marks those only some take)."""

    kind = fields.String(
        required=True,
        validate=validate.OneOf(KINDS),
        metadata=about(
            "`form` is served at `/forms/NAME`, `hook` at `/hooks/NAME`, `widget` at "
            "`/widget/NAME`."
        ),
    )
    widget = fields.Nested(
        WidgetSchema,
        metadata=about(
            "The widget's look and its status view.", schema=WidgetSchema, kinds=("widget",)
        ),
    )
    page = fields.Nested(
        PageSchema,
        metadata=about(
            "The hosted form and thank-you page.", schema=PageSchema, kinds=FORM_AND_WIDGET
        ),
    )
    redirect = fields.Nested(
        RedirectSchema,
        metadata=about(
            "Where browsers go after a post.", schema=RedirectSchema, kinds=FORM_AND_WIDGET
        ),
    )
    origins = fields.List(
        fields.String(
            validate=validate.Regexp(
                r"^https?://[^/\s]+$", error="an origin is scheme://host[:port], without a path"
            )
        ),
        metadata=about(
            "Sites allowed to post (`Origin`, else `Referer`); they get CORS answers. Others "
            "are 403.",
            kinds=FORM_AND_WIDGET,
        ),
    )
    spam = fields.Nested(
        SpamSchema,
        metadata=about("Spam defences.", schema=SpamSchema, kinds=FORM_AND_WIDGET),
    )
    limits = fields.Nested(
        LimitsSchema,
        metadata=about("Rate limits.", schema=LimitsSchema, kinds=FORM_AND_WIDGET),
    )
    attachments = fields.Nested(
        AttachmentsSchema,
        metadata=about(
            "Limits on the files of `file` fields.",
            schema=AttachmentsSchema,
            kinds=FORM_AND_WIDGET,
        ),
    )
    retention = fields.Nested(
        RetentionSchema,
        metadata=about(
            "How long personal data is kept after delivery (default: until `bridge outbox "
            "purge` or `bridge erase`).",
            schema=RetentionSchema,
        ),
    )
    double_submit_window = Duration(
        load_default=300.0,
        metadata=about(
            "The same email and words on the route within this time make one ticket.",
            kinds=FORM_AND_WIDGET,
        ),
    )
    declared = fields.Dict(
        data_key="fields",
        keys=fields.String(
            validate=validate.Regexp(
                r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", error="field names are letters, digits and _"
            )
        ),
        values=fields.Raw(),
        metadata=about(
            "The fields the route takes, in order; they build its marshmallow schema.",
            schema=FieldSpecSchema,
            each="field",
        ),
    )
    source = fields.String(
        metadata=about(f"A sender preset: {', '.join(source_names())}.", kinds=("hook",)),
    )
    schema = fields.String(
        validate=module_class,
        metadata=about("Your own marshmallow `Schema` instead of `fields:`, as `module:Class`."),
    )
    # A key named like Schema.unknown: marshmallow takes declared fields off the class.
    unknown = fields.String(  # type: ignore[assignment]
        load_default="reject",
        validate=validate.OneOf(UNKNOWN_POLICIES),
        metadata=about(
            "Undeclared fields: `reject` them (422), `drop` them, or `append` them to the "
            "description."
        ),
    )
    ticket = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(),
        metadata=about("How a submission becomes a ticket.", schema=TicketSpecSchema),
    )
    dedup_key = fields.String(
        metadata=about(
            "A template; submissions with the same key (within the route) make one ticket."
        )
    )
    auth = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(),
        metadata=about(
            "How senders prove who they are; every check given must pass.",
            schema=HookAuthSchema,
            kinds=("hook",),
        ),
    )
    max_body = fields.Integer(
        load_default=DEFAULT_MAX_BODY,
        validate=validate.Range(min=1024, max=10 * 1024 * 1024),
        metadata=about(
            "The largest JSON or urlencoded body accepted, in bytes; larger is 413. "
            "Multipart bodies may carry the files' total on top."
        ),
    )
    resolved = fields.String(
        load_default="ignore",
        validate=validate.OneOf(["ignore", "ticket"]),
        metadata=about("What a resolved notification does.", kinds=("hook",)),
    )
    alert_mode = fields.String(
        load_default="group",
        validate=validate.OneOf(["group", "alert"]),
        metadata=about(
            "One ticket per alert group, or per alert (Alertmanager and Grafana).",
            kinds=("hook",),
        ),
    )
    max_alerts = fields.Integer(
        load_default=20,
        validate=validate.Range(min=1, max=1000),
        metadata=about(
            'Alerts listed in a description before an "… and N more" line.', kinds=("hook",)
        ),
    )
    ticket_check_ttl = Duration(
        load_default=60.0,
        metadata=about(
            "How long the list API's \"this incident's ticket is still open\" is trusted.",
            kinds=("hook",),
        ),
    )
    heartbeat = fields.Nested(
        HeartbeatSchema,
        metadata=about(
            "Expect a heartbeat notification (Alertmanager's Watchdog) this often; when it "
            "goes silent, one ticket says the alert pipeline is silent.",
            schema=HeartbeatSchema,
            kinds=("hook",),
        ),
    )
    storm = fields.Nested(
        StormSchema,
        metadata=about(
            "Above `max_new` new alert groups in a `window`, the rest go into one summary "
            "ticket per window instead of a ticket each.",
            schema=StormSchema,
            kinds=("hook",),
        ),
    )
    update = fields.Nested(
        UpdateSchema,
        metadata=about(
            "Keep each alert group's open ticket current: its priority when the severity "
            "rises, its subject and state when the group resolves or fires again, its "
            "count and status block on repeats. Updates go through the outbox, at most one "
            "per ticket per `every`.",
            schema=UpdateSchema,
            kinds=("hook",),
        ),
    )
    capture = fields.Integer(
        load_default=0,
        validate=validate.Range(min=0, max=200),
        metadata=about(
            "Keep the last N raw payloads (secrets and auth headers removed) for the "
            "console's test bench (0: keep none).",
            kinds=("hook",),
        ),
    )
