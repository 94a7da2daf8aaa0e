"""The ``bridge`` command: check-config and try on the shipped examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("name", ["contact", "alertmanager", "grafana", "widget", "demo"])
def test_every_example_passes_check_config(name: str) -> None:
    code, out, err = run("check-config", "--config", str(EXAMPLES / f"{name}.yaml"))
    assert code == 0, err
    assert "OK" in out


def try_route(config: str, route: str, payload: str) -> dict[str, object]:
    code, out, err = run(
        "try", "--config", str(EXAMPLES / config), route, str(EXAMPLES / "payloads" / payload)
    )
    assert code == 0, err + out
    return dict(json.loads(out))


def test_try_contact_form() -> None:
    out = try_route("contact.yaml", "contact", "contact.json")
    assert out["ticket"] == {
        "email": "jane@example.com",
        "subject": "[Billing] My invoice for March shows the wrong VAT number. Could...",
        "name": "Jane Doe",
        "description": "My invoice for March shows the wrong VAT number.\nCould you send a "
        "corrected one?\n\n--\nReference: pb-try0000000000000",
        "priority": "high",
        "inbox": "IB238-436",
        "custom_fields": {"CF007-07": "billing"},
    }
    assert out["dedup_key"] == "contact:jane@example.com:230e5b834328fa57"


def test_try_alertmanager() -> None:
    out = try_route("alertmanager.yaml", "alerts", "alertmanager.json")
    ticket = out["ticket"]
    assert isinstance(ticket, dict)
    assert ticket["subject"] == "[FIRING:2] High CPU Temperature (critical)"
    assert ticket["priority"] == "high" and ticket["inbox"] == "IB238-500"
    assert ticket["email"] == "alerts@example.com"
    assert "description: CPU core temperature is 34.75C" in ticket["description"]
    assert "description: CPU core temperature is 17.625C" in ticket["description"]
    assert "source: http://cobalt:9090/graph?g0.expr=" in ticket["description"]
    assert out["dedup_key"] == "alerts:{}/{}:{}"


def test_try_grafana() -> None:
    out = try_route("grafana.yaml", "grafana", "grafana.json")
    ticket = out["ticket"]
    assert isinstance(ticket, dict)
    assert ticket["subject"] == "[FIRING:2] (blue)"
    assert (
        "[1] High memory usage — firing\n    started: 2021-10-12T09:51:03.157076+02:00"
        in ticket["description"]
    )
    assert "silence: https://play.grafana.org/alerting/silence/new?" in ticket["description"]


def test_try_widget_and_demo_hook() -> None:
    ticket = try_route("widget.yaml", "support", "widget.json")["ticket"]
    assert ticket == {
        "email": "sam@example.com",
        "subject": "Widget: The export button does nothing on Safari.",
        "name": "Sam",
        "description": "The export button does nothing on Safari.\n\n--\n"
        "Reference: pb-try0000000000000",
        "priority": "normal",
        "inbox": "IB238-436",
    }
    out = try_route("demo.yaml", "events", "events.json")
    assert out["ticket"]["subject"] == "Nightly backup failed"  # type: ignore[index]
    assert out["ticket"]["priority"] == "high"  # type: ignore[index]
    assert out["dedup_key"] == "events:evt_1042"


def test_try_reports_validation_errors_in_the_answer_shape() -> None:
    code, out, _ = run(
        "try",
        "--config",
        str(EXAMPLES / "contact.yaml"),
        "contact",
        "-",
        stdin=json.dumps({"email": "nope", "message": ""}),
    )
    assert code == 1
    body = json.loads(out)
    assert body["code"] == "validation_failed"
    assert set(body["errors"]) == {"email", "name", "message"}


def test_try_refuses_unknown_routes_and_non_json() -> None:
    code, _, err = run("try", "--config", str(EXAMPLES / "contact.yaml"), "nope", "-", stdin="{}")
    assert code == 1 and "no route 'nope'" in err
    code, _, err = run(
        "try", "--config", str(EXAMPLES / "contact.yaml"), "contact", "-", stdin="{not json"
    )
    assert code == 1 and "not JSON" in err


def test_check_config_lists_every_error_and_prints_no_secret(tmp_path: Path) -> None:
    secret = "zz-top-secret-token-zz"
    bad = tmp_path / "bridge.yaml"
    bad.write_text(
        f"proprofs:\n  account_email: nobody\n  token: {secret}\n"
        "routes:\n  contact:\n    kind: forms\n"
    )
    code, out, err = run("check-config", "--config", str(bad))
    assert code == 1
    assert f"{bad}:2 proprofs.account_email: not a valid email address." in err
    assert f"{bad}:6 routes.contact.kind: must be one of: form, hook, widget." in err
    assert secret not in out + err
