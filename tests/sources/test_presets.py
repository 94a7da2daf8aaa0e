"""Every sender preset against payloads copied from the sender's own docs or repositories.

The payload files are verbatim copies; ``tests/fixtures/payloads/SOURCES.md`` names the
repository, path and commit each one came from.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import Route, settings_from_text
from bridge.intake.accept import Prepared
from bridge.intake.alerts import alert_status
from bridge.sources import source_names

PAYLOADS = Path(__file__).resolve().parents[1] / "fixtures" / "payloads"
PRESETS = [n for n in source_names() if n != "generic"]
SNS_TOPICS = "    auth: {sns: {topics: ['arn:aws:sns:eu-west-1:111111111111:mySampleTopic']}}\n"
CONFIG = "proprofs: {account_email: o@example.com, token: t}\nroutes:\n" + "".join(
    f"  {name}:\n    kind: hook\n    source: {name}\n    ticket: {{email: alerts@example.com}}\n"
    + (SNS_TOPICS if name == "aws_sns" else "")
    for name in PRESETS
)
ROUTES = settings_from_text(CONFIG, env={}).routes

CASES = [
    # (sender, file, subject, priority, status, dedup key, lines in the description)
    (
        "alertmanager",
        "zulip_alertmanager_alert_grouped_firing.json",
        "[FIRING:2] High CPU Temperature (critical)",
        "high",
        "firing",
        "alertmanager:{}/{}:{}",
        [
            "High CPU core temperature",
            "2 alert(s) firing for receiver ops-zulip.",
            "    description: CPU core temperature is 34.75C",
            "    description: CPU core temperature is 17.625C",
            "    started: 2020-02-06T00:17:58.432911368Z",
            "    source: http://cobalt:9090/graph?g0.expr=",
            "Alertmanager: http://ops1:9093",
        ],
    ),
    (
        "alertmanager",
        "prom2teams_with_common_items_resolved.json",
        "[RESOLVED:1] CPUThrottlingHigh monitoring (warning)",
        "normal",
        "resolved",
        'alertmanager:{}/{alertname="CPUThrottlingHigh"}:{}',
        ["    ended: 2019-01-28T20:27:23.868893Z", "    namespace: monitoring"],
    ),
    (
        "alertmanager",
        "fxinnovation_servicenow_alertmanager_firing_v3.json",
        "[FIRING:1] something_happened test_instance:9100 (warning)",
        "normal",
        "firing",
        "alertmanager:43434343434343434343",
        ["    summary: Oops, something happened!"],
    ),
    (
        "alertmanager",
        "prom2teams_all_ok_multiple_resolved.json",
        "[RESOLVED:2] DiskSpace",
        "normal",
        "resolved",
        'alertmanager:[["alertname", "DiskSpace"]]',
        ["    mountpoint: /", "    description: disk usage 93% on rootfs device"],
    ),
    (
        "grafana",
        "zulip_grafana_alert_new_multiple_firing.json",
        "[FIRING:2] (blue)",
        "high",
        "firing",
        "grafana:{}:{}",
        [
            "[1] High memory usage — firing",
            "[2] High CPU usage — firing",
            "    runbook_url: https://myrunbook.com/runbook/1234",
            "    silence: https://play.grafana.org/alerting/silence/new?",
        ],
    ),
    (
        "grafana",
        "ntfy_webhook_grafana_resolved.json",
        "[RESOLVED] Load avg 15m too high Node alerts (10.108.0.2:9100 node-exporter)",
        "normal",
        "resolved",
        'grafana:{}:{alertname="Load avg 15m too high", grafana_folder="Node alerts"}',
        ["15m load average too high", "    values: [ var='B' labels={__name__=node_load15"],
    ),
    (
        "grafana",
        "zulip_grafana_legacy_alert_evalMatches.json",
        "[Alerting] Test notification",
        "high",
        "firing",
        "grafana:rule:0:",
        ["Someone is testing the alert notification within grafana.", "    High value = 100"],
    ),
    (
        "sentry",
        "zulip_sentry_issue_created_for_message.json",
        "[Sentry] ZULIP-INTEGRATION-TESTING-3: A simple message-based issue.",
        "low",
        "firing",
        "sentry:issue:1635261062",
        ["action: created", "level: info", "project: Zulip Integration Testing"],
    ),
    (
        "sentry",
        "zulip_sentry_issue_resolved.json",
        "[Sentry] ZULIP-INTEGRATION-TESTING-E: Exception: program has entered an invalid state.",
        "high",
        "resolved",
        "sentry:issue:1638821441",
        ["action: resolved", "level: error"],
    ),
    (
        "datadog",
        "relay-integrations_datadog_event-fired_example_default_payload.json",
        "[Triggered] [TEST] Host Cluster Alert",
        "high",
        "firing",
        "datadog:[TEST] Host Cluster Alert",
        ["Test notification triggered by kenaz@puppet.com.", "event type: service_check"],
    ),
    (
        "uptime_kuma",
        "simplecloudnotifier_uptime_kuma_down_compact.json",
        "[DOWN] test (https://exampleXYZ.com)",
        "high",
        "firing",
        "uptime_kuma:monitor:89",
        ["message: timeout of 16000ms exceeded", "url: https://exampleXYZ.com"],
    ),
    (
        "uptime_kuma",
        "simplecloudnotifier_uptime_kuma_up.json",
        "[UP] test (https://example.com)",
        "low",
        "resolved",
        "uptime_kuma:monitor:89",
        ["message: 200 - OK"],
    ),
    (
        "uptimerobot",
        "zulip_uptimerobot_monitor_down.json",
        "[DOWN] Web Server (server1.example.com)",
        "high",
        "firing",
        "uptimerobot:monitor:server1.example.com",
        ["Host Is Unreachable"],
    ),
    (
        "uptimerobot",
        "zulip_uptimerobot_monitor_up.json",
        "[UP] Mail Server (server2.example.com)",
        "normal",
        "resolved",
        "uptimerobot:monitor:server2.example.com",
        ["duration: 44 minutes and 37 seconds"],
    ),
    (
        "pagerduty",
        "zulip_triggered_v3.json",
        "[PagerDuty #9] Test Incident 3 (triggered)",
        "high",
        "firing",
        "pagerduty:incident:PFQZPSY",
        ["service: pig208", "incident: https://pig208.pagerduty.com/incidents/PFQZPSY"],
    ),
    (
        "pagerduty",
        "zulip_resolved_v3.json",
        "[PagerDuty #6] Test Incident (resolved)",
        "high",
        "resolved",
        "pagerduty:incident:PCPZE64",
        ["event: incident.resolved at 2021-06-04T13:16:53.816Z"],
    ),
    (
        "zabbix",
        "zulip_zabbix_alert.json",
        "[PROBLEM] Zabbix agent on www.example.com is unreachable for 5 minutes on www.example.com "
        "(Average)",
        "normal",
        "firing",
        "zabbix:www.example.com:Zabbix agent on www.example.com is unreachable for 5 minutes",
        [
            "item: Agent ping is Up (1)",
            "event: https://zabbix.example.com/tr_events.php?triggerid=14032&eventid=10528",
        ],
    ),
    (
        "zabbix",
        "zulip_zabbix_ok.json",
        "[OK] Zabbix agent on www.example.com is reachable on www.example.com (Average)",
        "normal",
        "resolved",
        "zabbix:www.example.com:Zabbix agent on www.example.com is reachable",
        ["status: OK"],
    ),
    (
        "aws_sns",
        "aws-lambda-go_cloudwatch-alarm-sns-payload-single-metric.json",
        "[ALARM] EXAMPLE in EXAMPLE",
        "high",
        "firing",
        "aws_sns:alarm:arn:aws:cloudwatch:REGION:ACCOUNT_NUMBER:alarm:EXAMPLE",
        ["state: INSUFFICIENT_DATA → ALARM", "metric: AWS/EC2 NetworkOut GreaterThanThreshold 0.0"],
    ),
    (
        "aws_sns",
        "spring-cloud-aws_notificationMessage.json",
        "asdasd",
        "normal",
        "firing",
        "aws_sns:message:f2c15fec-c617-5b08-b54d-13c4099fec60",
        ["topic: arn:aws:sns:eu-west-1:111111111111:mySampleTopic"],
    ),
    (
        "opsgenie",
        "zulip_opsgenie_create.json",
        "[Opsgenie Create] another alert (Server)",
        "normal",
        "firing",
        "opsgenie:alert:alert-alias",
        ["tags: vip", "priority: 3"],
    ),
    (
        "opsgenie",
        "zulip_opsgenie_close.json",
        "[Opsgenie Close] test alert",
        "normal",
        "resolved",
        "opsgenie:alert:aliastest",
        ["action: Close"],
    ),
    (
        "newrelic",
        "zulip_newrelic_incident_created_default_payload.json",
        "[New Relic CREATED] MAIN-APP-UBUNTU query result is > 2.0 for 1 minutes on 'High CPU'",
        "high",
        "firing",
        "newrelic:issue:208c5e92-f250-40be-b7c2-50508c268c15",
        ["policy: Golden Signals", "condition: High CPU"],
    ),
    (
        "newrelic",
        "zulip_newrelic_incident_closed_default_payload.json",
        "[New Relic CLOSED] main_app-UBUNTU query result is > 2.0 for 1 minutes on 'High CPU'",
        "high",
        "resolved",
        "newrelic:issue:95a9344a-2590-48ce-8d83-07e28b6d22c6",
        ["state: CLOSED"],
    ),
    (
        "azure_monitor",
        "azure-monitor-docs_common-schema_sample_metric_resolved.json",
        "[Azure Resolved] WCUS-R2-Gen2 (Sev3)",
        "low",
        "resolved",
        "azure_monitor:alert:/subscriptions/<subscription ID>/providers/Microsoft.AlertsManagement/"
        "alerts/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e",
        ["signal: Metric (Platform)", "resolved: 2019-03-22T14:03:16.2246313Z"],
    ),
]


def run(
    route: Route, raw: bytes, mimetype: str = "application/json", form: dict[str, str] | None = None
) -> tuple[Prepared, str]:
    assert route.source is not None
    payload = route.source.parse(raw, mimetype, form or {})
    data, extra = route.mapping.load(payload)
    draft = route.mapping.render(
        data, ref="pb-00000000000000000000", extra=extra, meta={"max_alerts": 20}
    )
    ready = Prepared(data, draft, route.mapping.dedup_key(data), "pb-00000000000000000000")
    return ready, alert_status(route, ready)


@pytest.mark.parametrize(
    ("sender", "name", "subject", "priority", "status", "key", "lines"),
    CASES,
    ids=[f"{c[0]}-{c[1][:30]}" for c in CASES],
)
def test_preset_makes_a_readable_ticket(
    sender: str, name: str, subject: str, priority: str, status: str, key: str, lines: list[str]
) -> None:
    ready, got_status = run(ROUTES[sender], (PAYLOADS / sender / name).read_bytes())
    assert ready.draft.subject == subject
    assert ready.draft.priority == priority
    assert got_status == status
    assert ready.dedup_key == key
    assert ready.draft.email == "alerts@example.com"
    description = ready.draft.description or ""
    for line in lines:
        assert line in description, (line, description)
    assert description.endswith("Reference: pb-00000000000000000000")


def test_every_preset_has_a_tested_payload() -> None:
    assert {case[0] for case in CASES} == set(PRESETS)


def test_sns_posts_json_as_text_plain_and_kuma_may_post_a_form() -> None:
    raw = (PAYLOADS / "aws_sns" / "spring-cloud-aws_notificationMessage.json").read_bytes()
    ready, _ = run(ROUTES["aws_sns"], raw, mimetype="text/plain")
    assert ready.draft.subject == "asdasd"
    kuma = (
        PAYLOADS / "uptime_kuma" / "simplecloudnotifier_uptime_kuma_down_compact.json"
    ).read_text()
    ready, status = run(ROUTES["uptime_kuma"], b"", "multipart/form-data", {"data": kuma})
    assert (ready.draft.subject, status) == ("[DOWN] test (https://exampleXYZ.com)", "firing")


def test_a_large_group_is_capped_with_a_more_line_not_cut_mid_line() -> None:
    import json

    alerts = [
        {
            "status": "firing",
            "labels": {"alertname": "DiskFull", "instance": f"db{n}"},
            "annotations": {"summary": f"disk {n} full"},
            "startsAt": "2026-01-01T00:00:00Z",
        }
        for n in range(45)
    ]
    body = json.dumps(
        {
            "version": "4",
            "status": "firing",
            "receiver": "r",
            "groupKey": "g",
            "alerts": alerts,
            "groupLabels": {"alertname": "DiskFull"},
            "commonLabels": {"alertname": "DiskFull"},
            "externalURL": "http://am",
        }
    )
    ready, _ = run(ROUTES["alertmanager"], body.encode())
    description = ready.draft.description or ""
    assert "[20] DiskFull" in description and "[21] DiskFull" not in description
    assert "… and 25 more alert(s) not listed." in description
    assert ready.draft.subject == "[FIRING:45] DiskFull"


def test_schemas_are_strict_about_what_they_use() -> None:
    from marshmallow import ValidationError

    with pytest.raises(ValidationError) as info:
        run(ROUTES["alertmanager"], b'{"status": "firing", "alerts": []}')
    assert "alerts" in info.value.messages
    with pytest.raises(ValidationError):
        run(ROUTES["pagerduty"], b'{"event": {"event_type": "incident.triggered"}}')
    ready, _ = run(
        ROUTES["zabbix"],
        b'{"hostname": "h", "trigger": "t", "status": "PROBLEM", '
        b'"severity": "Disaster", "new_field_from_v7": 1}',
    )
    assert ready.draft.priority == "high"  # tolerant of fields added over versions


@pytest.mark.parametrize(
    ("title", "subject"),
    [("", "Datadog alert"), ("   ", "Datadog alert"), ("\x01\x02", "Submission on route datadog")],
)
def test_every_preset_subject_has_words_even_when_the_sender_sends_none(
    title: str, subject: str
) -> None:
    """A Datadog event with a blank title (the fuzzing of test_hostile found one) still
    becomes a ticket with a subject, not a 422 and an ERROR line."""
    import json

    name = sorted((PAYLOADS / "datadog").iterdir())[0]
    payload = {**json.loads(name.read_text()), "title": title}
    ready, _ = run(ROUTES["datadog"], json.dumps(payload).encode())
    assert ready.draft.subject == subject
