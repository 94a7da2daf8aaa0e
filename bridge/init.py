"""``bridge init``: a commented, working ``bridge.yaml`` for what the user has, and what to
set on each sender's side.

Secrets are never written into the config: each is a ``${VAR}`` reference. The values go
to an env file beside it, readable by its owner only: fresh random ones for the secrets the
bridge and a sender share, empty lines for what the user must fill in (the ProProfs
credentials, a secret a sender generates). Nothing secret is printed.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

from . import __version__
from .guards.origins import origin_of

ROUTE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Sender:
    """How a preset's sender authenticates, and where its webhook is set up."""

    auth: str  # bearer | query | hmac:<scheme> | sns
    setup: str  # sender-side steps; {url} and {secret} are filled in


SENDERS: dict[str, Sender] = {
    "alertmanager": Sender(
        "bearer",
        "alertmanager.yml:\n"
        "  receivers:\n"
        "    - name: proprofs\n"
        "      webhook_configs:\n"
        "        - url: {url}\n"
        "          send_resolved: true\n"
        "          http_config: {{authorization: {{credentials: {secret}}}}}",
    ),
    "grafana": Sender(
        "hmac:grafana",
        "Grafana → Alerting → Contact points → Webhook: URL {url}; Optional settings → "
        "HMAC signature: secret {secret}, timestamp header X-Grafana-Alerting-Timestamp.",
    ),
    "sentry": Sender(
        "hmac:sentry",
        "Sentry → Settings → Developer Settings → Internal Integration: Webhook URL {url}, "
        "enable the Issue webhook; set {var} to the integration's client secret.",
    ),
    "pagerduty": Sender(
        "hmac:pagerduty",
        "PagerDuty → Integrations → Generic Webhooks (v3): URL {url}, events "
        "incident.triggered and incident.resolved; set {var} to the subscription's signing "
        "secret.",
    ),
    "datadog": Sender(
        "bearer",
        "Datadog → Integrations → Webhooks: URL {url}, custom headers "
        '{{"Authorization": "Bearer {secret}"}}; add "alert_id": "$ALERT_ID", '
        '"alert_transition": "$ALERT_TRANSITION", "alert_priority": "$ALERT_PRIORITY" to the '
        "payload.",
    ),
    "uptime_kuma": Sender(
        "query",
        "Uptime Kuma → Settings → Notifications → Webhook: Post URL {url}?token={secret}, "
        'body "Preset – application/json".',
    ),
    "uptimerobot": Sender(
        "query",
        "UptimeRobot → My Settings → Alert Contacts → Webhook: URL {url}?token={secret}, "
        '"Send as JSON" with monitor_id, monitor_url, monitor_friendly_name, alert_type, '
        "alert_type_friendly_name, alert_details and alert_friendly_duration.",
    ),
    "zabbix": Sender(
        "bearer",
        "Zabbix → Alerts → Media types → Webhook: a script that POSTs hostname, severity, "
        "status, item, trigger, event_id and link as JSON to {url} with "
        "Authorization: Bearer {secret}.",
    ),
    "opsgenie": Sender(
        "bearer",
        "Opsgenie → Settings → Integrations → Webhook: URL {url}, "
        '"Add Alert Description to Payload", header Authorization: Bearer {secret}.',
    ),
    "newrelic": Sender(
        "bearer",
        "New Relic → Alerts → Destinations → Webhook: URL {url}, authorization Bearer "
        "{secret}; a workflow using it with the default payload template.",
    ),
    "azure_monitor": Sender(
        "query",
        "Azure Monitor → Action group → Webhook: URI {url}?token={secret}, "
        '"Enable the common alert schema: Yes".',
    ),
    "aws_sns": Sender(
        "sns",
        "AWS SNS → your topic → Create subscription: protocol HTTPS, endpoint {url}; set "
        "{var} to the topic's ARN — the bridge confirms the subscription itself and checks "
        "every message's signature.",
    ),
    "generic": Sender(
        "bearer",
        "Any sender of JSON: POST to {url} with Authorization: Bearer {secret}.",
    ),
}

NAMES = {
    "alertmanager": "Prometheus Alertmanager",
    "aws_sns": "AWS SNS (CloudWatch alarms)",
    "azure_monitor": "Azure Monitor",
    "datadog": "Datadog",
    "generic": "Webhooks",
    "grafana": "Grafana",
    "newrelic": "New Relic",
    "opsgenie": "Opsgenie",
    "pagerduty": "PagerDuty",
    "sentry": "Sentry",
    "uptime_kuma": "Uptime Kuma",
    "uptimerobot": "UptimeRobot",
    "zabbix": "Zabbix",
}
PRESET_NOTES = {
    "alertmanager": "one ticket per alert group; resolved notifications make none",
    "generic": "any JSON object; dedup_key makes repeats of one event one ticket",
}


@dataclass
class Written:
    """What ``bridge init`` wrote, and what it tells the user afterwards."""

    text: str
    generated: dict[str, str]  # variable → a fresh secret for it
    to_fill: list[str]  # variables the user sets (ProProfs credentials, topic ARNs)
    instructions: list[str]
    values: dict[str, str] = field(default_factory=dict)  # variable → a setting, not secret

    def env_text(self) -> str:
        """The env file: the settings, the variables to fill in, the generated secrets."""
        lines = ["# Secrets for bridge.yaml, written by `bridge init`; keep this file private."]
        lines += [f"{name}={value}" for name, value in self.values.items()]
        lines += [f"{name}=" for name in self.to_fill]
        lines += [f"{name}={value}" for name, value in self.generated.items()]
        return "\n".join(lines) + "\n"


def env_name(*parts: str) -> str:
    """The variable of a route's secret: ``HOOK_GRAFANA_SECRET``."""
    return re.sub(r"[^A-Z0-9]+", "_", "_".join(parts).upper()).strip("_")


def render(
    *,
    forms: list[str],
    alerts: list[str],
    widgets: list[str],
    base_url: str = "https://bridge.example.com",
    sites: list[str] | None = None,
) -> Written:
    """The config text for these routes (route names for forms and widgets, presets for
    alerts), with every secret a ``${VAR}`` reference. ``base_url`` is where the bridge
    will be reached (``server.public_url``); ``sites`` the origins of the pages that carry
    the forms and the widget (their ``origins``)."""
    _check_names(forms, alerts, widgets)
    written = Written(
        "",
        {"BRIDGE_SECRET_KEY": secrets.token_urlsafe(32)},
        list(TO_FILL),
        [],
        {"BRIDGE_PUBLIC_URL": base_url},
    )
    out = list(HEAD)
    out[0] = out[0].format(version=__version__)
    allowed = _origins_line(sites or [])
    for name in forms:
        out += _form_route(name, base_url, allowed, written)
    for preset in alerts:
        out += _alert_route(preset, base_url, written)
    for name in widgets:
        out += _widget_route(name, base_url, allowed, written)
    written.text = "\n".join(out).rstrip() + "\n"
    return written


def site_origin(text: str) -> str:
    """The origin of a site's address (``https://www.example.com``); ``ValueError`` when it
    is not an http(s) address."""
    origin = origin_of(text.strip())
    if origin is None:
        raise ValueError(f"{text.strip()!r} is not a site address like https://www.example.com")
    return origin


def bad_route_names(names: list[str]) -> list[str]:
    """Those of ``names`` that cannot be route names."""
    return [name for name in names if not ROUTE_NAME.match(name)]


def unknown_presets(names: list[str]) -> list[str]:
    """Those of ``names`` that are no sender preset."""
    return [name for name in names if name not in SENDERS]


def _origins_line(sites: list[str]) -> str:
    if not sites:
        return "    # origins: [https://www.example.com]   # sites whose pages post here (CORS)"
    return f"    origins: [{', '.join(sites)}]   # sites whose pages post here (CORS)"


def _check_names(forms: list[str], alerts: list[str], widgets: list[str]) -> None:
    unknown = unknown_presets(alerts)
    if unknown:
        raise ValueError(f"unknown sender preset(s): {', '.join(unknown)}; one of {presets()}")
    bad = bad_route_names([*forms, *widgets])
    if bad:
        raise ValueError(f"{bad[0]!r} is not a route name (a-z, 0-9, - and _)")
    names = [*forms, *(a.replace("_", "-") for a in alerts), *widgets]
    if len(set(names)) != len(names):
        raise ValueError("two routes would have the same name; choose other names")
    if not names:
        raise ValueError("nothing to write: name at least one form, alert sender or widget")


#: The variables the user fills in whatever the routes.
TO_FILL = ("PROPROFS_ACCOUNT_EMAIL", "PROPROFS_TOKEN")
#: Everything above the routes (the first line takes the version).
HEAD = (
    "# bridge.yaml — written by `bridge init` (proprofs-bridge {version}).",
    "# Secrets are ${VAR} references, read from the environment when the bridge starts.",
    "# Check it with: bridge check-config --config bridge.yaml",
    "",
    "proprofs:",
    "  account_email: ${PROPROFS_ACCOUNT_EMAIL}   # the ProProfs account owner's email",
    "  token: ${PROPROFS_TOKEN}                   # Settings → API token",
    "  timezone: America/Chicago                  # the account's time zone",
    "",
    "# Where submissions wait until they are tickets. SQLite for one machine;",
    "# postgresql+psycopg://user@host/db for several instances.",
    "store: ${BRIDGE_STORE:-sqlite:///bridge.db}",
    "",
    "server:",
    "  public_url: ${BRIDGE_PUBLIC_URL}   # where people and senders reach the bridge",
    "  secret_key: ${BRIDGE_SECRET_KEY}   # signs form time tokens and widget receipts",
    "  # rate_limit_storage: redis://127.0.0.1:6379/0   # share rate limits between instances",
    "  # trusted_proxies: 1                             # behind one reverse proxy",
    "",
    "# Under every route; a route's own keys win:",
    "# defaults:",
    "#   ticket: {inbox: IB238-436}   # every ticket in one inbox",
    "",
    "routes:",
)


def _form_route(name: str, base_url: str, allowed: str, written: Written) -> list[str]:
    written.instructions.append(
        f"Form {name}: point your page's form at {base_url}/forms/{name} (method post) and "
        f'add <script src="{base_url}/forms.js" defer></script> to the page (it gives the '
        f"form its time token), or link to the hosted page {base_url}/forms/{name}."
    )
    return [
        f'  # A contact form: <form action="{base_url}/forms/{name}" method="post"> and',
        f'  # <script src="{base_url}/forms.js" defer></script> on your page,',
        f"  # or the hosted page at {base_url}/forms/{name}.",
        f"  {name}:",
        "    kind: form",
        "    fields:",
        "      name:    {type: string, required: true, max_length: 200, label: Your name}",
        "      email:   {type: email, required: true, label: Email}",
        "      message: {type: text, required: true, max_length: 10000, label: Message}",
        allowed,
        "    spam: {honeypot: _gotcha, min_seconds: 2}",
        '    limits: {per_ip: ["10/hour"]}',
        "    ticket:",
        '      subject: "{{ message|oneline|truncate(60) }}"',
        '      description: "{{ message }}"',
        '      name: "{{ name }}"',
        '      email: "{{ email }}"',
        "",
    ]


def _alert_route(preset: str, base_url: str, written: Written) -> list[str]:
    sender = SENDERS[preset]
    route = preset.replace("_", "-")
    var = env_name(route, "secret" if sender.auth.startswith("hmac") else "token")
    note = f"{NAMES[preset]}: " + PRESET_NOTES.get(preset, "one ticket per alert")
    out = [f"  # {note}", f"  {route}:", "    kind: hook", f"    source: {preset}"]
    if sender.auth == "bearer":
        out.append(f'    auth: {{bearer: "${{{var}}}"}}')
    elif sender.auth == "query":
        out.append(f'    auth: {{query: {{token: "${{{var}}}"}}}}   # …/hooks/{route}?token=…')
    elif sender.auth == "sns":
        var = env_name(route, "topic_arn")
        out.append(f'    auth: {{sns: {{topics: ["${{{var}}}"]}}}}   # signatures checked')
    else:
        scheme = sender.auth.split(":", 1)[1]
        stamp = ", timestamp_header: X-Grafana-Alerting-Timestamp" if scheme == "grafana" else ""
        out.append(f'    auth: {{hmac: {{scheme: {scheme}, secret: "${{{var}}}"{stamp}}}}}')
    if preset == "generic":
        out.append("    dedup_key: \"{{ data.id or '' }}\"   # one ticket per event id")
    out.append("    update: {}   # keep its ticket current: severity, resolved, repeats")
    out += [
        "    ticket:",
        "      email: alerts@example.com   # the requester its tickets show",
        f"      name: {NAMES[preset]}",
        "",
    ]
    if sender.auth == "sns" or preset in ("sentry", "pagerduty"):
        written.to_fill.append(var)  # the sender makes this one up, not the bridge
    else:
        written.generated[var] = secrets.token_urlsafe(24)
    url = f"{base_url}/hooks/{route}"
    written.instructions.append(sender.setup.format(url=url, secret=f"${var}", var=var))
    return out


def _widget_route(name: str, base_url: str, allowed: str, written: Written) -> list[str]:
    written.instructions.append(
        f'Widget {name}: add <script src="{base_url}/widget.js" data-route="{name}" async>'
        "</script> to your pages."
    )
    return [
        "  # The support widget:",
        f'  # <script src="{base_url}/widget.js" data-route="{name}" async></script>',
        f"  {name}:",
        "    kind: widget",
        "    fields:",
        "      name:    {type: string, max_length: 200, label: Name}",
        "      email:   {type: email, required: true, label: Email}",
        "      message: {type: text, required: true, max_length: 5000, label: Message}",
        allowed,
        "    spam: {honeypot: _hp, min_seconds: 2}",
        '    limits: {per_ip: ["10/hour"]}',
        '    widget: {title: "Need help?", launcher: Help}',
        "    ticket:",
        '      subject: "Widget: {{ message|oneline|truncate(70) }}"',
        '      description: "{{ message }}"',
        "",
    ]


def presets() -> str:
    """The sender presets, for messages."""
    return ", ".join(sorted(SENDERS))
