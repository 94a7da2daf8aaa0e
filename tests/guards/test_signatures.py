"""Sender authentication over HTTP: bearer, basic, URL token, HMAC schemes, AWS SNS signatures."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import Headers

from bridge.app import create_app
from bridge.config import ConfigError, settings_from_text
from bridge.guards import GuardRefusal, signatures
from bridge.outbox.store import SubmissionStore

PAYLOADS = Path(__file__).resolve().parents[1] / "fixtures" / "payloads"
GRAFANA = (PAYLOADS / "grafana" / "zulip_grafana_alert_new_multiple_firing.json").read_bytes()
SENTRY = (PAYLOADS / "sentry" / "zulip_sentry_issue_created_for_message.json").read_bytes()
PAGERDUTY = (PAYLOADS / "pagerduty" / "zulip_triggered_v3.json").read_bytes()
SECRET = "s3cret-signing-key"
WHSEC = "whsec_" + base64.b64encode(b"standard-webhooks-key-32-bytes!!").decode()
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-test.pem"
TOPIC = "arn:aws:sns:eu-west-1:111111111111:alerts"

CONFIG = f"""
proprofs: {{account_email: o@example.com, token: t}}
store: STORE
routes:
  bearer: {{kind: hook, auth: {{bearer: bearer-token-123}}, ticket: {{email: a@example.com}}}}
  basic:
    kind: hook
    auth: {{basic: {{username: am, password: basic-pass-123}}}}
    ticket: {{email: a@example.com}}
  query: {{kind: hook, auth: {{query: {{token: query-token-123}}}}, ticket: {{email: a@example.com}}}}
  grafana:
    kind: hook
    source: grafana
    auth: {{hmac: {{scheme: grafana, secret: {SECRET}, timestamp_header: X-Grafana-Alerting-Timestamp}}}}
    ticket: {{email: a@example.com}}
  sentry:
    kind: hook
    source: sentry
    auth: {{hmac: {{scheme: sentry, secret: {SECRET}}}}}
    ticket: {{email: a@example.com}}
  pagerduty:
    kind: hook
    source: pagerduty
    auth: {{hmac: {{scheme: pagerduty, secret: {SECRET}}}}}
    ticket: {{email: a@example.com}}
  standard:
    kind: hook
    auth: {{hmac: {{scheme: standard, secret: "{WHSEC}"}}}}
    ticket: {{email: a@example.com}}
  sns:
    kind: hook
    source: aws_sns
    auth: {{sns: {{topics: ["{TOPIC}"]}}}}
    ticket: {{email: a@example.com}}
  sns-default:
    kind: hook
    source: aws_sns
    auth: {{sns: {{topics: ["{TOPIC}"]}}}}
    ticket: {{email: a@example.com}}
  sns-unverified:
    kind: hook
    source: aws_sns
    auth: {{sns: {{verify: false}}}}
    ticket: {{email: a@example.com}}
"""


@pytest.fixture(scope="module")
def signing_key() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def web(
    tmp_path: Path, signing_key: tuple[rsa.RSAPrivateKey, bytes]
) -> Iterator[tuple[FlaskClient, SubmissionStore, list[str]]]:
    url = f"sqlite:///{tmp_path / 'sig.db'}"
    store = SubmissionStore(url)
    opened: list[str] = []

    def fetch(cert_url: str) -> bytes:
        assert cert_url == CERT_URL
        return signing_key[1]

    def open_url(subscribe_url: str) -> int:
        opened.append(subscribe_url)
        return 200

    app = create_app(
        settings_from_text(CONFIG.replace("STORE", url), env={}),
        store=store,
        certificate_fetcher=fetch,
        url_opener=open_url,
    )
    yield app.test_client(), store, opened
    store.dispose()


def hexmac(message: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def post(
    client: FlaskClient,
    route: str,
    body: bytes,
    headers: dict[str, str],
    query: str = "",
    content_type: str = "application/json",
) -> tuple[int, dict[str, Any]]:
    response = client.post(
        f"/hooks/{route}{query}", data=body, headers=headers, content_type=content_type
    )
    assert response.status_code != 500
    return response.status_code, response.get_json()


GENERIC = b'{"title": "Disk full", "status": "firing"}'


@pytest.mark.parametrize(
    ("route", "headers", "query", "status"),
    [
        ("bearer", {"Authorization": "Bearer bearer-token-123"}, "", 202),
        ("bearer", {"Authorization": "Bearer wrong"}, "", 401),
        ("bearer", {}, "", 401),
        (
            "basic",
            {"Authorization": "Basic " + base64.b64encode(b"am:basic-pass-123").decode()},
            "",
            202,
        ),
        ("basic", {"Authorization": "Basic " + base64.b64encode(b"am:nope").decode()}, "", 401),
        ("basic", {"Authorization": "Basic ???"}, "", 401),
        ("query", {}, "?token=query-token-123", 202),
        ("query", {}, "?token=wrong", 401),
        ("query", {}, "", 401),
    ],
)
def test_plain_credentials(
    web: Any, route: str, headers: dict[str, str], query: str, status: int
) -> None:
    client, store, _ = web
    got, body = post(client, route, GENERIC, headers, query)
    assert got == status
    if status == 401:
        assert body["code"] == "unauthorized" and sum(store.counts().values()) == 0


def grafana_headers(
    body: bytes, *, stamp: int | None = None, secret: str = SECRET
) -> dict[str, str]:
    stamp = int(time.time()) if stamp is None else stamp
    return {
        "X-Grafana-Alerting-Signature": hexmac(f"{stamp}:".encode() + body, secret),
        "X-Grafana-Alerting-Timestamp": str(stamp),
    }


def standard_headers(
    body: bytes, *, msg_id: str = "msg_1", stamp: int | None = None, secret: str = WHSEC
) -> dict[str, str]:
    stamp = int(time.time()) if stamp is None else stamp
    key = base64.b64decode(secret.removeprefix("whsec_"))
    sig = base64.b64encode(
        hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    ).decode()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": f"v1,bogus v1,{sig}",
    }


def test_grafana_signatures(web: Any) -> None:
    client, _, _ = web
    assert post(client, "grafana", GRAFANA, grafana_headers(GRAFANA))[0] == 202
    assert (
        post(client, "grafana", GRAFANA, grafana_headers(GRAFANA, secret="other-secret"))[0] == 401
    )
    assert post(client, "grafana", GRAFANA + b" ", grafana_headers(GRAFANA))[0] == 401  # tampered
    stale = grafana_headers(GRAFANA, stamp=int(time.time()) - 3600)
    status, body = post(client, "grafana", GRAFANA, stale)
    assert status == 401 and "too old" in body["message"]
    assert post(client, "grafana", GRAFANA, {})[0] == 401  # missing header


def test_sentry_signatures(web: Any) -> None:
    client, _, _ = web
    assert post(client, "sentry", SENTRY, {"Sentry-Hook-Signature": hexmac(SENTRY)})[0] == 202
    assert (
        post(client, "sentry", SENTRY, {"Sentry-Hook-Signature": hexmac(SENTRY, "x" * 10)})[0]
        == 401
    )
    assert (
        post(
            client,
            "sentry",
            SENTRY.replace(b"simple", b"SIMPLE"),
            {"Sentry-Hook-Signature": hexmac(SENTRY)},
        )[0]
        == 401
    )
    assert post(client, "sentry", SENTRY, {})[0] == 401


def test_pagerduty_signatures_with_several_v1_values(web: Any) -> None:
    client, _, _ = web
    good = f"v1=deadbeef,v1={hexmac(PAGERDUTY)}"
    assert post(client, "pagerduty", PAGERDUTY, {"X-PagerDuty-Signature": good})[0] == 202
    assert post(client, "pagerduty", PAGERDUTY, {"X-PagerDuty-Signature": "v1=deadbeef"})[0] == 401
    assert post(client, "pagerduty", PAGERDUTY + b"\n", {"X-PagerDuty-Signature": good})[0] == 401
    assert post(client, "pagerduty", PAGERDUTY, {})[0] == 401


def test_standard_webhooks_with_replay_protection(web: Any) -> None:
    client, store, _ = web
    headers = standard_headers(GENERIC)
    status, first = post(client, "standard", GENERIC, headers)
    assert status == 202
    # The sender lost our 2xx and sends the same message again: a duplicate, not a 401.
    status, body = post(client, "standard", GENERIC, headers)
    assert (status, body) == (200, {"status": "duplicate", "id": first["id"]})
    # The same id with a bad signature, or a stale timestamp, is still refused.
    forged = {**headers, "webhook-signature": "v1," + base64.b64encode(b"x" * 32).decode()}
    assert post(client, "standard", GENERIC, forged)[0] == 401
    stale = standard_headers(GENERIC, stamp=int(time.time()) - 301)
    assert post(client, "standard", GENERIC, stale)[0] == 401
    assert (
        post(
            client,
            "standard",
            GENERIC,
            standard_headers(
                GENERIC, msg_id="m2", secret="whsec_" + base64.b64encode(b"k" * 32).decode()
            ),
        )[0]
        == 401
    )
    assert (
        post(client, "standard", GENERIC + b" ", standard_headers(GENERIC, msg_id="m3"))[0] == 401
    )
    old = standard_headers(GENERIC, msg_id="m4", stamp=int(time.time()) - 301)
    assert post(client, "standard", GENERIC, old)[0] == 401
    assert post(client, "standard", GENERIC, {})[0] == 401
    assert store.counts()["pending"] == 1


def test_a_standard_webhook_that_failed_is_processed_when_sent_again(web: Any) -> None:
    """Only a 2xx is remembered: a refused first attempt never turns a retry into a duplicate."""
    client, store, _ = web
    bad = b'["not an object"]'
    status, _ = post(client, "standard", bad, standard_headers(bad, msg_id="retry-1"))
    assert status == 422
    assert post(client, "standard", bad, standard_headers(bad, msg_id="retry-1"))[0] == 422
    assert store.counts()["pending"] == 0
    # A message whose attempt is still in progress elsewhere is told to come back, not 2xx.
    assert store.messages.begin("standard", "busy-1").state == "new"
    status, body = post(client, "standard", GENERIC, standard_headers(GENERIC, msg_id="busy-1"))
    assert status == 409 and body["code"] == "in_progress"
    # An attempt that died without an answer is taken over once it is stale.
    assert store.messages.begin("standard", "dead-1", now=time.time() - 120).state == "new"
    status, _ = post(client, "standard", GENERIC, standard_headers(GENERIC, msg_id="dead-1"))
    assert status == 202 and store.counts()["pending"] == 1


def sns_message(
    key: rsa.RSAPrivateKey,
    kind: str = "Notification",
    version: str = "1",
    topic: str = TOPIC,
    **extra: str,
) -> dict[str, str]:
    message = {
        "Type": kind,
        "MessageId": "m-1",
        "TopicArn": topic,
        "Timestamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "Message": json.dumps(
            {
                "AlarmName": "HighCPU",
                "NewStateValue": "ALARM",
                "OldStateValue": "OK",
                "NewStateReason": "CPU > 90",
                "Region": "EU (Ireland)",
            }
        ),
        "SignatureVersion": version,
        "SigningCertURL": CERT_URL,
        **extra,
    }
    if kind != "Notification":
        message.update(
            Token="tok",
            SubscribeURL="https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=tok",
            Message="You have chosen to subscribe",
        )
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signed = signatures.sns_string_to_sign(message)
    message["Signature"] = base64.b64encode(
        key.sign(signed, padding.PKCS1v15(), algorithm)
    ).decode()
    return message


@pytest.mark.parametrize("version", ["1", "2"])
def test_sns_signed_notifications(web: Any, signing_key: Any, version: str) -> None:
    client, store, _ = web
    message = sns_message(signing_key[0], version=version)
    status, _body = post(client, "sns", json.dumps(message).encode(), {}, content_type="text/plain")
    assert status == 202
    (sub,) = store.list()
    assert sub.draft.subject == "[ALARM] HighCPU in EU (Ireland)" and sub.draft.priority == "high"
    tampered = {**message, "Message": message["Message"].replace("90", "10")}
    assert (
        post(client, "sns", json.dumps(tampered).encode(), {}, content_type="text/plain")[0] == 401
    )


@pytest.mark.parametrize(
    "cert_url",
    [
        "http://sns.eu-west-1.amazonaws.com/x.pem",
        "https://sns.eu-west-1.amazonaws.com.evil.example/x.pem",
        "https://evil.example/sns.eu-west-1.amazonaws.com/x.pem",
        "https://sns.eu-west-1.amazonaws.com/x.txt",
        "https://user@sns.eu-west-1.amazonaws.com/x.pem",
        "https://sns.eu-west-1.amazonaws.com:8443/x.pem",
    ],
)
def test_sns_certificate_urls_are_checked_strictly(
    web: Any, signing_key: Any, cert_url: str
) -> None:
    client, _, _ = web
    message = {**sns_message(signing_key[0]), "SigningCertURL": cert_url}
    status, body = post(client, "sns", json.dumps(message).encode(), {}, content_type="text/plain")
    assert status == 401 and "certificate URL" in body["message"]


def test_sns_subscription_confirmation_only_for_configured_topics(
    web: Any, signing_key: Any
) -> None:
    client, store, opened = web
    ok = sns_message(signing_key[0], kind="SubscriptionConfirmation")
    status, body = post(client, "sns", json.dumps(ok).encode(), {}, content_type="text/plain")
    assert (status, body["status"]) == (200, "subscribed")
    assert opened == [ok["SubscribeURL"]]
    other = sns_message(
        signing_key[0],
        kind="SubscriptionConfirmation",
        topic="arn:aws:sns:eu-west-1:111111111111:other",
    )
    status, body = post(client, "sns", json.dumps(other).encode(), {}, content_type="text/plain")
    assert status == 403 and body["code"] == "topic_not_allowed"
    assert len(opened) == 1 and sum(store.counts().values()) == 0


def test_an_sns_route_verifies_signatures_without_being_told(web: Any, signing_key: Any) -> None:
    """``source: aws_sns`` alone checks signatures; subscriptions never become tickets."""
    client, store, opened = web
    signed = sns_message(signing_key[0])
    unsigned = {k: v for k, v in signed.items() if k != "Signature"}
    forged = {**signed, "Message": signed["Message"].replace("HighCPU", "Forged")}
    for message in (unsigned, forged):
        status, body = post(
            client, "sns-default", json.dumps(message).encode(), {}, content_type="text/plain"
        )
        assert status == 401 and body["code"] == "unauthorized", body
    assert sum(store.counts().values()) == 0
    assert post(client, "sns-default", json.dumps(signed).encode(), {}, "", "text/plain")[0] == 202
    for kind in ("SubscriptionConfirmation", "UnsubscribeConfirmation"):
        message = sns_message(signing_key[0], kind=kind)
        status, _ = post(client, "sns-default", json.dumps(message).encode(), {}, "", "text/plain")
        assert status == 200
    assert opened == [message["SubscribeURL"]] and sum(store.counts().values()) == 1


def test_sns_verification_switched_off_still_makes_no_ticket_of_a_subscription(
    web: Any, signing_key: Any
) -> None:
    client, store, opened = web
    for kind in ("SubscriptionConfirmation", "UnsubscribeConfirmation"):
        message = {**sns_message(signing_key[0], kind=kind), "Signature": "bm90IHNpZ25lZA=="}
        status, body = post(
            client, "sns-unverified", json.dumps(message).encode(), {}, content_type="text/plain"
        )
        assert status in (200, 403) and body["status"] != "accepted", body
    assert opened == [] and sum(store.counts().values()) == 0


def test_check_config_warns_when_sns_verification_is_off(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from bridge.cli import main

    config = tmp_path / "bridge.yaml"
    config.write_text(CONFIG.replace("STORE", f"sqlite:///{tmp_path / 'c.db'}"))
    result = CliRunner().invoke(main, ["check-config", "--config", str(config)])
    assert result.exit_code == 0, result.output
    line = next(n for n, text in enumerate(CONFIG.splitlines(), 1) if "verify: false" in text)
    assert (
        f"warning: {config}:{line} routes.sns-unverified.auth.sns.verify: SNS signatures are not "
        "checked on this route" in result.output
    )
    assert result.output.count("warning:") == 1


VERIFIERS = [
    lambda h, b: signatures.bearer(h, "expected-token"),
    lambda h, b: signatures.basic(h, "user", "password-123"),
    lambda h, b: signatures.grafana(h, b, SECRET, now=time.time(), timestamp_header="X-Ts"),
    lambda h, b: signatures.grafana(h, b, SECRET, now=time.time()),
    lambda h, b: signatures.sentry(h, b, SECRET),
    lambda h, b: signatures.pagerduty(h, b, SECRET),
    lambda h, b: signatures.standard_webhooks(h, b, WHSEC, now=time.time()),
    lambda h, b: signatures.sns(_json_or_none(b), lambda url: b"not a certificate"),
]


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


HEADER_NAMES = st.sampled_from(
    [
        "Authorization",
        "X-Grafana-Alerting-Signature",
        "X-Ts",
        "Sentry-Hook-Signature",
        "X-PagerDuty-Signature",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "X-Other",
    ]
)
HEADER_VALUES = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=80)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    headers=st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=6),
    body=st.binary(max_size=300),
    which=st.integers(min_value=0, max_value=len(VERIFIERS) - 1),
)
def test_random_bytes_and_headers_never_raise_anything_but_a_refusal(
    headers: dict[str, str], body: bytes, which: int
) -> None:
    try:
        VERIFIERS[which](Headers(headers), body)
    except GuardRefusal as refusal:
        assert refusal.status == 401


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    headers=st.dictionaries(
        HEADER_NAMES, HEADER_VALUES.filter(lambda v: "\n" not in v), max_size=5
    ),
    body=st.binary(max_size=200),
    route=st.sampled_from(
        ["bearer", "basic", "query", "grafana", "sentry", "pagerduty", "standard", "sns"]
    ),
)
def test_random_requests_never_get_a_500(
    web: Any, headers: dict[str, str], body: bytes, route: str
) -> None:
    client, _, _ = web
    response = client.post(
        f"/hooks/{route}", data=body, headers=headers, content_type="application/json"
    )
    assert response.status_code in (400, 401, 403, 415, 422)


def test_sns_subscription_with_aws_unreachable_is_a_clear_502(
    tmp_path: Path, signing_key: tuple[rsa.RSAPrivateKey, bytes], caplog: pytest.LogCaptureFixture
) -> None:
    """Opening the SubscribeURL failed once with a traceback and a bare 500."""
    url = f"sqlite:///{tmp_path / 'sub.db'}"
    store = SubmissionStore(url)

    def unreachable(subscribe_url: str) -> int:
        raise requests.ConnectionError("Name or service not known")

    app = create_app(
        settings_from_text(CONFIG.replace("STORE", url), env={}),
        store=store,
        certificate_fetcher=lambda _: signing_key[1],
        url_opener=unreachable,
    )
    message = json.dumps(sns_message(signing_key[0], kind="SubscriptionConfirmation")).encode()
    status, body = post(app.test_client(), "sns", message, {}, content_type="text/plain")
    assert (status, body["code"]) == (502, "subscription_failed")
    assert "confirm it in the AWS console" in body["message"]
    assert sum(store.counts().values()) == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    store.dispose()


def test_every_sns_message_must_come_from_a_listed_topic(web: Any, signing_key: Any) -> None:
    client, store, _ = web
    other = "arn:aws:sns:eu-west-1:111111111111:someone-elses"
    for kind in ("Notification", "UnsubscribeConfirmation"):
        message = sns_message(signing_key[0], kind=kind, topic=other)
        status, body = post(client, "sns", json.dumps(message).encode(), {}, "", "text/plain")
        assert (status, body["code"]) == (403, "topic_not_allowed"), body
    assert sum(store.counts().values()) == 0


def test_an_old_sns_message_is_refused_as_a_replay(web: Any, signing_key: Any) -> None:
    client, store, _ = web
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    message = sns_message(signing_key[0], Timestamp=old)
    status, body = post(client, "sns", json.dumps(message).encode(), {}, "", "text/plain")
    assert status == 401 and "replays are refused" in body["message"]
    assert sum(store.counts().values()) == 0


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("sns.us-east-1.amazonaws.com", True),
        ("sns.us-gov-west-1.amazonaws.com", True),
        ("sns.cn-north-1.amazonaws.com.cn", True),
        ("sns.s3.amazonaws.com", False),
        ("sns.evil.amazonaws.com", False),
        ("sns.amazonaws.com", False),
        ("sns.us-east-1.amazonaws.com.evil.example", False),
    ],
)
def test_sns_hosts_are_regional_endpoints_only(host: str, allowed: bool) -> None:
    assert signatures.sns_url_allowed(f"https://{host}/SimpleNotificationService-x.pem") is allowed


def test_a_verified_sns_route_must_list_its_topics() -> None:
    text = CONFIG.replace("STORE", "sqlite:///x.db").replace(
        f'    auth: {{sns: {{topics: ["{TOPIC}"]}}}}\n    ticket: {{email: a@example.com}}\n  sns-unverified',
        "    ticket: {email: a@example.com}\n  sns-unverified",
    )
    with pytest.raises(ConfigError) as refused:
        settings_from_text(text, env={})
    assert "routes.sns-default.auth.sns.topics" in str(refused.value)
