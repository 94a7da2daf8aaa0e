"""Deployment files, each checked with the tool that exists for it here."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bridge.config import settings_from_text
from tests.conftest import IN_CI

# Starts processes or external tools: part of make test, left out of make check.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        reason = f"{tool} is not installed here (make deploy-tools installs it)"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def test_gunicorn_accepts_its_config() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--check-config",
            "-c",
            str(DEPLOY / "gunicorn.conf.py"),
            "bridge.app:from_environment()",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "BRIDGE_CONFIG": str(ROOT / "examples" / "demo.yaml")},
    )
    assert result.returncode == 0, result.stderr


def test_nginx_accepts_its_config() -> None:
    nginx = need("nginx")
    result = subprocess.run(
        [nginx, "-t", "-c", str(DEPLOY / "nginx.conf")], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    text = (DEPLOY / "nginx.conf").read_text()
    assert "client_max_body_size" in text and "real_ip_header X-Forwarded-For" in text


def test_systemd_units_verify(tmp_path: Path) -> None:
    analyze = need("systemd-analyze")
    venv_bin = Path(sys.executable).parent
    for unit in (DEPLOY / "systemd").iterdir():
        name = unit.name.replace("@.", "@1.")
        text = unit.read_text().replace("/opt/proprofs-bridge/bin", str(venv_bin))
        # The units run as a dedicated "bridge" user; this machine has none, so check as root.
        text = re.sub(r"^(User|Group)=bridge$", r"\1=root", text, flags=re.M)
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        [analyze, "verify", *map(str, sorted(tmp_path.iterdir()))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_dockerfile_is_multi_stage_non_root_with_a_health_check() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) == 2
    assert re.search(r"^USER bridge$", text, re.M) and "HEALTHCHECK" in text
    assert "/healthz" in text and "gunicorn.conf.py" in text


def test_compose_has_web_worker_postgres_and_redis() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert {"web", "worker", "postgres", "redis", "migrate"} <= set(compose["services"])
    assert compose["services"]["worker"]["command"][:2] == ["bridge", "worker"]
    assert "readyz" in " ".join(compose["services"]["web"]["healthcheck"]["test"])


def test_kubernetes_manifests() -> None:
    docs = [
        doc
        for path in sorted((DEPLOY / "kubernetes").iterdir())
        for doc in yaml.safe_load_all(path.read_text())
    ]
    kinds = sorted(doc["kind"] for doc in docs)
    assert kinds == ["ConfigMap", "Deployment", "Deployment", "Secret", "Service"]
    web = next(d for d in docs if d["metadata"]["name"] == "proprofs-bridge-web")
    container = web["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]["bridge.yaml"]
    settings_from_text(
        config.replace("${file:/run/secrets/bridge/proprofs_token}", "t")
        .replace("${file:/run/secrets/bridge/alerts_token}", "alerts-token")
        .replace("${BRIDGE_STORE}", "postgresql+psycopg://x@h/db"),
        env={},
    )


def test_the_example_production_config_checks(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("secret-token\n")
    text = (
        (DEPLOY / "bridge.example.yaml")
        .read_text()
        .replace("/run/secrets/proprofs_token", str(token))
    )
    settings = settings_from_text(text, env={})
    assert settings.server.rate_limit_storage.startswith("redis://")
    assert settings.admin.enabled


RULES = ROOT / "deploy" / "prometheus-rules.yaml"


def test_the_alert_rules_pass_promtools_check_and_their_unit_tests() -> None:
    promtool = need("promtool")
    checked = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 6 rules found" in checked.stdout
    tested = subprocess.run(
        [promtool, "test", "rules", "prometheus-rules.test.yaml"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=RULES.parent,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_metric_a_rule_reads_is_one_the_bridge_serves(tmp_path: Path) -> None:
    """A rule on a misspelt metric never fires: each name must be in a real /metrics."""
    from bridge.app import create_app
    from bridge.outbox.store import SubmissionStore

    settings = settings_from_text(
        f"""
proprofs: {{account_email: o@example.com, token: t0ken-for-tests}}
store: "sqlite:///{tmp_path / "m.db"}"
routes: {{e: {{kind: hook, ticket: {{email: a@example.com}}}}}}
""",
        env={},
    )
    store = SubmissionStore(settings.store)
    app = create_app(settings, store=store)
    state = app.extensions["bridge"]
    state.metrics.api_call("create", "ok", 0.1)  # a counter shows once it has counted
    store.pauses.pause("e")
    served = app.test_client().get("/metrics").get_data(as_text=True)
    store.dispose()
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    wanted = {name for rule in rules for name in re.findall(r"\bbridge_[a-z_]+", rule["expr"])}
    assert wanted, "no metric found in the rules"
    missing = [name for name in sorted(wanted) if not re.search(rf"^{name}[{{ ]", served, re.M)]
    assert missing == [], missing
