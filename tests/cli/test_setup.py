"""The ``bridge`` command: check-config and try on the shipped examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.app import create_app
from bridge.cli import main
from bridge.config import load_settings
from tests.conftest import FIXTURES

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_example_passes_check_config_and_boots(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRIDGE_STORE", f"sqlite:///{tmp_path / 'example.db'}")
    code, out, err = run("check-config", "--config", str(path))
    assert code == 0, err
    assert "OK" in out
    app = create_app(load_settings(path))
    web = app.test_client()
    assert web.get("/healthz").status_code == 200
    document = web.get("/openapi.json").get_json()
    assert set(document["paths"]) >= {route.path for route in load_settings(path).routes.values()}


def test_check_config_warns_when_watch_tickets_cannot_link_incident_pages(
    tmp_path: Path,
) -> None:
    config = tmp_path / "bridge.yaml"
    config.write_text(f"""
proprofs: {{account_email: o@example.com, token: t}}
store: "sqlite:///{tmp_path / "w.db"}"
routes:
  am: {{kind: hook, source: alertmanager, storm: {{max_new: 5, window: 1m}}, ticket: {{email: a@x.io}}}}
""")
    code, out, err = run("check-config", "--config", str(config))
    assert code == 0 and "OK" in out
    assert "routes.am.storm: its tickets are raised by the delivery process" in err
    assert "server.public_url" in err
    config.write_text(config.read_text() + 'server: {public_url: "https://bridge.example.com"}\n')
    code, out, err = run("check-config", "--config", str(config))
    assert code == 0 and err == ""


SHARED_AUTH = """
proprofs: {account_email: o@example.com, token: t}
store: STORE
routes:
  am-1: {kind: hook, source: alertmanager, auth: {bearer: token-one-1}, ticket: {email: a@x.io}}
  am-2: {kind: hook, source: alertmanager, auth: {bearer: token-two-2}, ticket: {email: a@x.io}}
  b-1: {kind: hook, auth: {basic: {username: u, password: pass-one-1}}, ticket: {email: a@x.io}}
  b-2: {kind: hook, auth: {basic: {username: v, password: pass-two-2}}, ticket: {email: a@x.io}}
  q-1: {kind: hook, auth: {query: {token: query-one-1}}, ticket: {email: a@x.io}}
  q-2: {kind: hook, auth: {query: {token: query-two-2}}, ticket: {email: a@x.io}}
  q-3: {kind: hook, auth: {query: {param: key, token: query-three}}, ticket: {email: a@x.io}}
  g-1:
    kind: hook
    source: grafana
    auth: {hmac: {scheme: grafana, secret: grafana-one}}
    ticket: {email: a@x.io}
  g-2:
    kind: hook
    source: grafana
    auth: {hmac: {scheme: grafana, secret: grafana-two, header: X-Other-Signature}}
    ticket: {email: a@x.io}
  s-1: {kind: hook, auth: {hmac: {scheme: standard, secret: standard-1}}, ticket: {email: a@x.io}}
  s-2: {kind: hook, auth: {hmac: {scheme: standard, secret: standard-2}}, ticket: {email: a@x.io}}
  help-desk:
    kind: form
    fields: {email: {type: email, required: true}, message: {type: text, required: true}}
  help_desk:
    kind: form
    fields: {email: {type: email, required: true}, note: {type: text, required: true}}
"""


def test_routes_sharing_an_auth_kind_or_a_component_name_boot(tmp_path: Path) -> None:
    """Two bearer routes (and two of every other kind) once made apispec refuse to boot."""
    config = tmp_path / "bridge.yaml"
    config.write_text(SHARED_AUTH.replace("STORE", f"sqlite:///{tmp_path / 'b.db'}"))
    code, out, err = run("check-config", "--config", str(config))
    assert code == 0 and "OK — 13 route(s)" in out, err
    settings = load_settings(config)
    document = create_app(settings).test_client().get("/openapi.json").get_json()
    schemes = document["components"]["securitySchemes"]
    assert set(document["paths"]) >= {r.path for r in settings.routes.values()}
    for path, operations in document["paths"].items():
        for requirement in operations.get("post", {}).get("security", []):
            assert set(requirement) <= set(schemes), path
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer"}
    assert {schemes[n]["name"] for n in schemes if schemes[n]["type"] == "apiKey"} == {
        "token",
        "key",
        "X-Grafana-Alerting-Signature",
        "X-Other-Signature",
        "webhook-signature",
    }
    form_schemas = {
        document["paths"][f"/forms/{name}"]["post"]["requestBody"]["content"]["application/json"][
            "schema"
        ]["$ref"]
        for name in ("help-desk", "help_desk")
    }
    assert len(form_schemas) == 2  # two routes, two input schemas, never one overwritten


def test_check_config_refuses_a_config_the_app_cannot_be_built_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "typo_schema.py").write_text(
        "from marshmallow import Schema, fields\n"
        "class Contact(Schema):\n"
        "    email = fields.Email(required=True)\n"
        "    message = fields.String(required=True)\n"
        "    address = fields.Nested('Adress')\n"  # a typo: no schema of that name exists
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    config = tmp_path / "bridge.yaml"
    config.write_text(
        "proprofs: {account_email: o@example.com, token: secret-token-1}\n"
        f"store: sqlite:///{tmp_path / 'b.db'}\n"
        "routes:\n  contact: {kind: form, schema: 'typo_schema:Contact',\n"
        "    ticket: {email: '{{ email }}', subject: '{{ message }}'}}\n"
    )
    code, out, err = run("check-config", "--config", str(config))
    assert code == 1 and "OK" not in out
    assert f"{config}: the app cannot start with this config: RegistryError" in err
    assert "Adress" in err and "secret-token-1" not in err


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


def test_try_without_a_payload_uses_the_routes_sample(tmp_path: Path) -> None:
    """A hook route: its sender preset's shipped payload; a form: sample field values; a
    route with its own schema: a clear request for a payload."""
    code, out, err = run("try", "--config", str(EXAMPLES / "alertmanager.yaml"), "alerts")
    assert code == 0, err
    assert err.strip() == "trying the alertmanager sample"
    assert json.loads(out)["ticket"]["subject"] == "[FIRING:2] High CPU Temperature (critical)"
    code, out, err = run("try", "--config", str(EXAMPLES / "contact.yaml"), "contact")
    assert code == 0, err
    assert err.strip() == "trying sample fields"
    assert json.loads(out)["ticket"]["email"] == "sam@example.com"
    config = tmp_path / "bridge.yaml"
    config.write_text(
        "proprofs: {account_email: o@example.com, token: secret-token-1}\n"
        "routes:\n  contact: {kind: form, schema: 'tests.sample_schema:ContactSchema',\n"
        "    ticket: {email: '{{ email }}', subject: '{{ message }}'}}\n"
    )
    code, out, err = run("try", "--config", str(config), "contact")
    assert (code, out) == (1, "")
    assert err.strip() == "route 'contact' has its own schema: give a PAYLOAD file"


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


def test_try_reads_the_payload_as_intake_does() -> None:
    """A CloudWatch alarm inside SNS's Lambda-style envelope: intake unwraps it through the
    preset; `try` once loaded the raw JSON and refused it with validation errors."""
    alarm = (
        FIXTURES
        / "payloads"
        / "aws_sns"
        / "aws-lambda-go_cloudwatch-alarm-sns-payload-single-metric.json"
    )
    code, out, err = run(
        "try", "--config", str(EXAMPLES / "kitchen-sink.yaml"), "cloudwatch", str(alarm)
    )
    assert code == 0, err + out
    ticket = json.loads(out)["ticket"]
    assert (ticket["subject"], ticket["priority"]) == ("[ALARM] EXAMPLE in EXAMPLE", "high")
