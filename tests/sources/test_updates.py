"""Every sender preset that reports resolution or severity keeps its ticket current
(``update:``), on real payloads from ../shared/payloads (copied to tests/fixtures).

Where a sender's two samples are of different incidents, the resolved one is given the
firing one's id (the one field the preset's dedup key reads), so both are of one
incident; where only one sample exists, the other state is that sample with the state
field changed. Each case says what it changed.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from bridge.app import create_app
from bridge.outbox.store import SubmissionStore
from bridge.proprofs.emulator import EmulatorServer
from tests.support.alerts import PAYLOADS, deliver
from tests.support.configs import settings_with

Payload = dict[str, Any]


def real(path: str) -> Payload:
    return json.loads((PAYLOADS / path).read_text())


def edit(payload: Payload, change: Callable[[Payload], None]) -> Payload:
    out = copy.deepcopy(payload)
    change(out)
    return out


def put(path: str, value: Any) -> Callable[[Payload], None]:
    """Set a dotted path (``event.data.id``) in a payload."""

    def change(payload: Payload) -> None:
        *parents, last = path.split(".")
        node = payload
        for part in parents:
            node = node[part]
        node[last] = value

    return change


@dataclass(frozen=True)
class Case:
    source: str
    firing: Payload  # the first notification
    resolved: Payload  # the same incident, resolved
    worse: Payload | None = None  # the same incident at a higher severity (after firing)


def cases() -> list[Case]:
    am_firing = real("alertmanager/fxinnovation_servicenow_alertmanager_firing_v3.json")
    grafana = real("grafana/zulip_grafana_alert_new_multiple_firing.json")
    kuma_down = real("uptime_kuma/simplecloudnotifier_uptime_kuma_down_compact.json")
    robot_down = real("uptimerobot/zulip_uptimerobot_monitor_down.json")
    pd = real("pagerduty/zulip_triggered_v3.json")
    og = real("opsgenie/zulip_opsgenie_create.json")
    dd = real("datadog/relay-integrations_datadog_event-fired_example_default_payload.json")
    zabbix = real("zabbix/zulip_zabbix_alert.json")
    azure = real("azure_monitor/azure-monitor-docs_common-schema_sample_metric_resolved.json")
    nr = real("newrelic/zulip_newrelic_incident_created_default_payload.json")
    sentry = real("sentry/zulip_sentry_issue_created_for_message.json")
    sns = real("aws_sns/aws-lambda-go_cloudwatch-alarm-sns-payload-single-metric.json")
    return [
        # Both samples are of one group (the same groupKey).
        Case(
            "alertmanager",
            am_firing,
            real("alertmanager/fxinnovation_servicenow_alertmanager_resolved_v3.json"),
            edit(am_firing, put("commonLabels.severity", "critical")),
        ),
        # Grafana's resolved sample is of another rule: given the firing one's groupKey.
        Case(
            "grafana",
            edit(grafana, put("commonLabels.severity", "warning")),
            edit(real("grafana/ntfy_webhook_grafana_resolved.json"), put("groupKey", "{}:{}")),
            grafana,
        ),
        # Down, then up, of monitor 89 (both samples).
        Case("uptime_kuma", kuma_down, real("uptime_kuma/simplecloudnotifier_uptime_kuma_up.json")),
        # The up sample is of server2: given server1's URL.
        Case(
            "uptimerobot",
            robot_down,
            edit(
                real("uptimerobot/zulip_uptimerobot_monitor_up.json"),
                put("monitor_url", robot_down["monitor_url"]),
            ),
        ),
        Case(
            "pagerduty",
            edit(pd, put("event.data.urgency", "low")),
            edit(
                real("pagerduty/zulip_resolved_v3.json"),
                put("event.data.id", pd["event"]["data"]["id"]),
            ),
            pd,
        ),
        Case(
            "opsgenie",
            og,
            edit(
                real("opsgenie/zulip_opsgenie_close.json"), put("alert.alias", og["alert"]["alias"])
            ),
            edit(og, put("alert.priority", "P1")),
        ),
        # One sample: the recovery is its title marked [Recovered], as Datadog marks it.
        Case(
            "datadog",
            edit(dd, put("title", dd["title"].replace("[Triggered]", "[Warn]"))),
            edit(dd, put("title", dd["title"].replace("[Triggered]", "[Recovered]"))),
            dd,
        ),
        Case(
            "zabbix",
            zabbix,
            edit(real("zabbix/zulip_zabbix_ok.json"), put("trigger", zabbix["trigger"])),
            edit(zabbix, put("severity", "Disaster")),
        ),
        # One sample (resolved): the firing is the same alert with monitorCondition Fired.
        Case(
            "azure_monitor",
            edit(azure, put("data.essentials.monitorCondition", "Fired")),
            azure,
            edit(
                edit(azure, put("data.essentials.monitorCondition", "Fired")),
                put("data.essentials.severity", "Sev0"),
            ),
        ),
        Case(
            "newrelic",
            edit(nr, put("priority", "LOW")),
            edit(
                real("newrelic/zulip_newrelic_incident_closed_default_payload.json"),
                put("id", nr["id"]),
            ),
            nr,
        ),
        Case(
            "sentry",
            sentry,
            edit(
                real("sentry/zulip_sentry_issue_resolved.json"),
                put("data.issue.id", sentry["data"]["issue"]["id"]),
            ),
            edit(sentry, put("data.issue.level", "fatal")),
        ),
        # One sample (ALARM): back to OK is the same alarm's next message, a new MessageId.
        Case("aws_sns", sns, edit(sns, sns_ok)),
    ]


def sns_ok(payload: Payload) -> None:
    """The alarm's message says OK (a new message: the replay guard knows the first)."""
    message = payload["Records"][0]["Sns"]
    alarm = json.loads(message["Message"])
    alarm.update(OldStateValue="ALARM", NewStateValue="OK")
    message.update(Message=json.dumps(alarm), MessageId=message["MessageId"][:-1] + "f")


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.source)
def test_the_preset_keeps_its_ticket_current(
    case: Case, emulator: EmulatorServer, tmp_path: Any
) -> None:
    settings = settings_with(
        emulator,
        f"sqlite:///{tmp_path / 'store.db'}",
        f"""
routes:
  {case.source}:
    kind: hook
    source: {case.source}
    ticket_check_ttl: 0
    ticket: {{email: alerts@example.com}}
    update: {{every: 0s, fields: {{state: CF101-01, occurrences: CF101-02}}}}
{"    auth: {sns: {verify: false}}" if case.source == "aws_sns" else ""}
""",
    )
    with SubmissionStore(settings.store) as store:
        client = create_app(settings, store=store).test_client()
        path = f"/hooks/{case.source}"
        first = client.post(path, json=case.firing)
        assert first.status_code == 202, first.get_json()
        deliver(store, settings)
        (ticket,) = emulator.state.tickets.values()
        created_priority = ticket.priority
        if case.worse is not None:
            assert client.post(path, json=case.worse).get_json()["status"] == "duplicate"
            deliver(store, settings)
            assert ticket.priority == "high" != created_priority
        answer = client.post(path, json=case.resolved)
        assert answer.status_code == 200
        assert answer.get_json() == {"status": "updated", "id": first.get_json()["id"]}
        deliver(store, settings)
    assert len(emulator.state.tickets) == 1
    assert "Status: resolved" in (ticket.description or "")
    fields = {f["id"]: f["value"] for f in ticket.custom_fields}
    assert fields["CF101-01"] == "resolved"
    assert fields["CF101-02"] == ("2" if case.worse is not None else "1")
    if case.worse is not None:
        assert ticket.priority == "high"  # a resolve never lowers it
    if case.source == "sentry":  # its subject does not say the state: the prefix does
        assert ticket.subject.startswith("[RESOLVED] ")
    assert ticket.description.rstrip().endswith(first.get_json()["id"])
