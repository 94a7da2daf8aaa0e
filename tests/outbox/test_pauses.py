"""A paused route takes and stores submissions and delivers none; resumed, all go out."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from bridge.app import create_app, proprofs_client
from bridge.cli import main
from bridge.config import load_settings
from bridge.outbox.store import SubmissionStore
from bridge.outbox.worker import DeliverySettings, Worker
from bridge.proprofs.emulator import EmulatorServer
from tests.conftest import ACCOUNT_EMAIL, TOKEN


def write(tmp_path: Path, emulator: EmulatorServer, store_url: str) -> Path:
    config = tmp_path / "bridge.yaml"
    config.write_text(f"""
proprofs: {{base_url: "{emulator.base_url}", account_email: {ACCOUNT_EMAIL}, token: {TOKEN}}}
store: "{store_url}"
admin: {{trusted_header: X-Forwarded-User, secure_cookies: false}}
server: {{trusted_proxies: [127.0.0.1]}}
routes:
  quiet: {{kind: hook, ticket: {{email: a@example.com, subject: "quiet {{{{ data.n }}}}"}}}}
  loud:  {{kind: hook, ticket: {{email: a@example.com, subject: "loud {{{{ data.n }}}}"}}}}
""")
    return config


def test_nothing_is_delivered_while_paused_and_everything_after(
    tmp_path: Path, emulator: EmulatorServer, store_url: str
) -> None:
    config = write(tmp_path, emulator, store_url)
    cli = CliRunner()
    paused = cli.invoke(main, ["routes", "pause", "quiet", "--config", str(config)])
    assert paused.exit_code == 0 and paused.output == "route quiet: paused\n"
    again = cli.invoke(main, ["routes", "pause", "quiet", "--config", str(config)])
    assert again.output == "route quiet: was already paused\n"
    unknown = cli.invoke(main, ["routes", "pause", "nope", "--config", str(config)])
    assert unknown.exit_code == 2 and "no route 'nope'" in unknown.output
    listing = cli.invoke(main, ["routes", "list", "--config", str(config)])
    assert re.search(r"loud\s+hook\s+delivering", listing.output)
    assert re.search(r"quiet\s+hook\s+paused since ", listing.output)

    settings = load_settings(config)
    store = SubmissionStore(settings.store)
    client = create_app(settings, store=store).test_client()
    for n in range(3):
        assert client.post("/hooks/quiet", json={"n": n}).status_code == 202  # still taken
        assert client.post("/hooks/loud", json={"n": n}).status_code == 202
    with proprofs_client(settings) as proprofs:
        Worker(store, proprofs, DeliverySettings(poll_interval=0.05)).run(
            until_idle=True, max_seconds=10
        )
    subjects = sorted(t.subject for t in emulator.state.tickets.values())
    assert subjects == ["loud 0", "loud 1", "loud 2"]
    assert store.counts()["pending"] == 3

    # Resumed from the console (CSRF-checked), the stored ones go out.
    staff = {"X-Forwarded-User": "sam"}
    page = client.get("/admin/routes", headers=staff).get_data(as_text=True)
    assert "Delivery paused" in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    assert client.post("/admin/routes/quiet/resume", headers=staff).status_code == 400
    done = client.post(
        "/admin/routes/quiet/resume", data={"csrf_token": token.group(1)}, headers=staff
    )
    assert done.status_code == 303 and store.pauses.paused() == {}
    with proprofs_client(settings) as proprofs:
        Worker(store, proprofs, DeliverySettings(poll_interval=0.05)).run(
            until_idle=True, max_seconds=10
        )
    subjects = sorted(t.subject for t in emulator.state.tickets.values())
    assert subjects == ["loud 0", "loud 1", "loud 2", "quiet 0", "quiet 1", "quiet 2"]
    resumed = cli.invoke(main, ["routes", "resume", "quiet", "--config", str(config)])
    assert resumed.output == "route quiet: was not paused\n"
    store.dispose()


def test_paused_routes_show_in_the_metrics(
    tmp_path: Path, emulator: EmulatorServer, store_url: str
) -> None:
    settings = load_settings(write(tmp_path, emulator, store_url))
    store = SubmissionStore(settings.store)
    client = create_app(settings, store=store).test_client()
    store.pauses.pause("quiet")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'bridge_route_paused{route="quiet"} 1.0' in text
    assert 'route="loud"' not in text.split("bridge_route_paused", 1)[1]
    store.dispose()
