"""The OpenAPI document, and a bounded schemathesis run against a real ``bridge serve``:
no 5xx, and no answer that breaks the document's own schema."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from bridge.proprofs.emulator import EmulatorServer
from tests.e2e.harness import bridge_server, schemathesis, write_config

pytestmark = pytest.mark.e2e

ROUTES = """
  contact:
    kind: form
    fields:
      name:    {type: string, required: true, max_length: 200}
      email:   {type: email, required: true}
      topic:   {type: choice, choices: [sales, support]}
      message: {type: text, required: true, max_length: 2000}
  alerts:
    kind: hook
    source: alertmanager
    auth: {bearer: openapi-bearer-token}
    ticket: {email: alerts@example.com}
  support:
    kind: widget
    fields:
      email:   {type: email, required: true}
      message: {type: text, required: true}
"""


def test_the_document_describes_every_route(emulator: EmulatorServer, tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "bridge.yaml", f"sqlite:///{tmp_path / 'o.db'}", emulator, routes=ROUTES
    )
    with bridge_server(config, delivery=False) as url:
        document = requests.get(f"{url}/openapi.json", timeout=10).json()
    assert set(document["paths"]) >= {
        "/forms/contact",
        "/hooks/alerts",
        "/hooks/events",
        "/widget/support",
        "/widget/support/status/{receipt}",
    }
    contact = document["components"]["schemas"]["ContactInput"]
    assert contact["required"] == ["email", "message", "name"]
    assert contact["properties"]["topic"]["enum"] == ["sales", "support"]
    assert contact["properties"]["message"]["maxLength"] == 2000
    assert document["paths"]["/hooks/alerts"]["post"]["security"] == [{"bearer": []}]
    alerts = document["components"]["schemas"]["AlertsInput"]
    assert set(alerts["required"]) == {"alerts", "status"}


def test_schemathesis_finds_no_5xx_and_no_broken_answer(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "bridge.yaml", f"sqlite:///{tmp_path / 's.db'}", emulator, routes=ROUTES
    )
    with bridge_server(config, delivery=False) as url:
        result = schemathesis(url, max_examples=40)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
