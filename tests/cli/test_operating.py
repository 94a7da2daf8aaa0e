"""Operator commands: outbox list/show/replay/purge and db upgrade, on a real SQLite store."""

from __future__ import annotations

import json
import time
from pathlib import Path

from click.testing import CliRunner

from bridge.cli import main
from bridge.outbox.records import Outcome
from bridge.outbox.store import SubmissionStore
from bridge.proprofs import TicketDraft


def setup(tmp_path: Path) -> tuple[Path, SubmissionStore]:
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    config = tmp_path / "bridge.yaml"
    config.write_text(f"""
proprofs: {{account_email: o@example.com, token: t}}
store: "{url}"
routes:
  events: {{kind: hook, ticket: {{email: hooks@example.com}}}}
""")
    return config, SubmissionStore(url)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_list_show_replay_purge(tmp_path: Path) -> None:
    config, store = setup(tmp_path)
    now = time.time()
    ok = store.enqueue("events", "hook", TicketDraft(email="a@b.co", subject="Fine"), now=now)
    bad = store.enqueue("events", "hook", TicketDraft(email="a@b.co", subject="Bad"), now=now)
    for claim in store.claim("w", 5, now=now):
        if claim.id == ok.id:
            outcome = Outcome.delivered("00700")
            store.finish(claim, outcome, kind="create", started_at=now, now=now - 40 * 86400)
        else:
            outcome = Outcome.dead("staff 'x' is not a staff id", 200)
            store.finish(claim, outcome, kind="create", started_at=now)
    code, out, _ = run("outbox", "list", "--config", str(config))
    assert code == 0 and ok.id in out and bad.id in out
    assert "totals: delivered 1, dead 1" in out
    code, out, _ = run("outbox", "list", "--config", str(config), "--state", "dead")
    assert bad.id in out and ok.id not in out
    code, out, _ = run("outbox", "show", "--config", str(config), bad.id)
    shown = json.loads(out)
    assert shown["state"] == "dead" and shown["draft"]["subject"] == "Bad"
    assert shown["attempt_log"][0]["outcome"] == "dead"
    assert "not a staff id" in shown["attempt_log"][0]["error"]
    assert run("outbox", "show", "--config", str(config), "pb-nope")[0] == 1
    code, out, _ = run("outbox", "replay", "--config", str(config), bad.id)
    assert code == 0 and store.get(bad.id).state == "pending"  # type: ignore[union-attr]
    code, _, err = run("outbox", "replay", "--config", str(config), ok.id)
    assert code == 1 and "not a dead submission" in err
    for claim in store.claim("w", 5):
        store.finish(claim, Outcome.dead("again"), kind="create", started_at=now)
    filters = ["--all-dead", "--error", "AGAIN", "--since", "2020-01-01 00:00"]
    code, out, _ = run("outbox", "replay", "--config", str(config), *filters, "--dry-run")
    assert code == 0 and "1 dead submission(s) would be replayed" in out
    assert "whose last error has 'AGAIN', dead since 2020-01-01 00:00 UTC" in out
    code, out, _ = run("outbox", "replay", "--config", str(config), "--all-dead", "--error", "503")
    assert code == 0 and "replaying 0 dead" in out
    code, _, err = run("outbox", "replay", "--config", str(config), "--all-dead", "--until", "x")
    assert code == 2 and "is not a time" in err
    code, out, _ = run("outbox", "replay", "--config", str(config), "--all-dead")
    assert code == 0 and "replaying 1 dead" in out
    code, out, _ = run("outbox", "purge", "--config", str(config), "--older-than", "30d")
    assert code == 0 and "purged 1 delivered" in out and store.get(ok.id) is None
    assert run("outbox", "purge", "--config", str(config), "--older-than", "soon")[0] == 2
    store.dispose()


def test_db_upgrade_and_unreachable_store(tmp_path: Path) -> None:
    config, store = setup(tmp_path)
    code, out, _ = run("db", "upgrade", "--config", str(config))
    assert code == 0 and "up to date" in out
    store.dispose()
    down = tmp_path / "down.yaml"
    down.write_text(
        config.read_text().replace(
            f"sqlite:///{tmp_path / 'ops.db'}",
            "postgresql+psycopg://postgres@127.0.0.1:9/x?connect_timeout=1",
        )
    )
    code, _, err = run("db", "upgrade", "--config", str(down))
    assert code == 1 and "cannot reach the store" in err
