"""The kitchen-sink config (``examples/kitchen-sink.yaml``) as the e2e tests run it: its
environment, and a sender's credentials for each of its hook routes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bridge.config import Route, Settings, load_settings
from bridge.proprofs.emulator import EmulatorServer
from tests.conftest import ACCOUNT_EMAIL, FIXTURES, TOKEN
from tests.e2e.harness import ROOT

KITCHEN_SINK = ROOT / "examples" / "kitchen-sink.yaml"
SHIPPED = FIXTURES / "payloads"
EXAMPLE_PAYLOADS = ROOT / "examples" / "payloads"

# Every secret the file reads, set to values unlike its placeholders: the test proves the
# environment, not the defaults, is what the running bridge uses.
SECRETS = {
    "ALERTMANAGER_TOKEN": "ks-am-bearer-0001",
    "ALERTMANAGER_PASSWORD": "ks-am-basic-0002",
    "GRAFANA_SECRET": "ks-grafana-hmac-0003",
    "GRAFANA_PASSWORD": "ks-grafana-basic-0004",
    "SENTRY_SECRET": "ks-sentry-hmac-0005",
    "SENTRY_URL_TOKEN": "ks-sentry-query-0006",
    "PAGERDUTY_SECRET": "ks-pagerduty-hmac-0007",
    "PAGERDUTY_TOKEN": "ks-pagerduty-bearer-0008",
    "DATADOG_PASSWORD": "ks-datadog-basic-0009",
    "DATADOG_URL_TOKEN": "ks-datadog-query-0010",
    "KUMA_TOKEN": "ks-kuma-bearer-0011",
    "KUMA_WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"ks-kuma-standard-key-0012").decode(),
    "UPTIMEROBOT_URL_TOKEN": "ks-uptimerobot-query-0013",
    "UPTIMEROBOT_PASSWORD": "ks-uptimerobot-basic-0014",
    "ZABBIX_TOKEN": "ks-zabbix-bearer-0015",
    "ZABBIX_URL_TOKEN": "ks-zabbix-query-0016",
    "OPSGENIE_PASSWORD": "ks-opsgenie-basic-0017",
    "OPSGENIE_TOKEN": "ks-opsgenie-bearer-0018",
    "NEWRELIC_TOKEN": "ks-newrelic-bearer-0019",
    "NEWRELIC_URL_TOKEN": "ks-newrelic-query-0020",
    "AZURE_PASSWORD": "ks-azure-basic-0021",
    "AZURE_URL_TOKEN": "ks-azure-query-0022",
    "SNS_RELAY_TOKEN": "ks-sns-relay-query-0023",
    "EVENTS_WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"ks-events-standard-key-0024").decode(),
    "DEPLOYS_TOKEN": "ks-deploys-bearer-0025",
    "WIDGET_IDENTITY_SECRET": "ks-widget-identity-secret-0026",
    "BRIDGE_SECRET_KEY": "ks-bridge-secret-key-0027",
}


def kitchen_env(
    emulator: EmulatorServer, store_url: str, rate_limits: str = "memory://"
) -> dict[str, str]:
    return {
        **SECRETS,
        "PROPROFS_BASE_URL": emulator.base_url,
        "PROPROFS_ACCOUNT_EMAIL": ACCOUNT_EMAIL,
        "PROPROFS_TOKEN": TOKEN,
        "BRIDGE_STORE": store_url,
        "BRIDGE_RATE_LIMITS": rate_limits,
    }


def kitchen_settings(env: Mapping[str, str]) -> Settings:
    return load_settings(KITCHEN_SINK, env=env)


# A real sender's payloads for each preset (SNS's as AWS posts them: text/plain).
def shipped(preset: str) -> list[Path]:
    if preset == "generic":
        return [EXAMPLE_PAYLOADS / "events.json"]
    return sorted((SHIPPED / preset).glob("*.json"))


_message_ids = itertools.count(1)


def credentials(route: Route, body: bytes) -> tuple[dict[str, str], dict[str, str]]:
    """The headers and query parameters a correctly configured sender adds to ``body``."""
    headers: dict[str, str] = {}
    query: dict[str, str] = {}
    auth: Mapping[str, Any] = route.auth
    if auth.get("bearer"):
        headers["Authorization"] = f"Bearer {auth['bearer']}"
    if auth.get("basic"):
        pair = f"{auth['basic']['username']}:{auth['basic']['password']}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    if auth.get("query"):
        query[auth["query"].get("param", "token")] = str(auth["query"]["token"])
    spec = auth.get("hmac")
    if spec:
        headers.update(sign(spec, body))
    return headers, query


def sign(spec: Mapping[str, Any], body: bytes) -> dict[str, str]:
    secret = str(spec["secret"])
    stamp = str(int(time.time()))
    scheme = spec["scheme"]
    if scheme == "grafana":
        header = spec.get("header") or "X-Grafana-Alerting-Signature"
        if spec.get("timestamp_header"):
            signed = _hex(secret, f"{stamp}:".encode() + body)
            return {header: signed, spec["timestamp_header"]: stamp}
        return {header: _hex(secret, body)}
    if scheme == "sentry":
        return {"Sentry-Hook-Signature": _hex(secret, body)}
    if scheme == "pagerduty":
        return {"X-PagerDuty-Signature": f"v1={_hex(secret, body)}"}
    message_id = f"msg_ks{next(_message_ids):06d}{time.monotonic_ns()}"
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{message_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


def _hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
