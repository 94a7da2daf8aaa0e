"""Console sessions the server can revoke, and the signing key the store makes itself."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from bridge.app import create_app, signing_key
from bridge.config import settings_from_text
from bridge.outbox.store import SubmissionStore

TOKEN = "tok-access-secret-0001"


def settings_for(store_url: str, extra: str = "") -> object:
    return settings_from_text(
        f"""
proprofs: {{account_email: o@example.com, token: {TOKEN}}}
store: "{store_url}"
routes: {{e: {{kind: hook, ticket: {{email: a@example.com}}}}}}
{extra}""",
        env={},
    )


def test_the_signing_key_is_random_made_once_and_shared(store_url: str) -> None:
    settings = settings_for(store_url)
    first, second = SubmissionStore(store_url), SubmissionStore(store_url)
    key = signing_key(settings, first)  # type: ignore[arg-type]
    assert len(key) == 64 and key == signing_key(settings, second)  # type: ignore[arg-type]
    # Nothing about the ProProfs token gives it away (it used to be derived from it).
    derived = hmac.new(TOKEN.encode(), b"proprofs-bridge signing key", hashlib.sha256)
    assert key != derived.hexdigest() and TOKEN not in key
    # Two apps on one store sign alike: a receipt or a link from one opens on the other.
    apps = [create_app(settings, store=s) for s in (first, second)]  # type: ignore[arg-type]
    keys = {a.extensions["bridge"].signing_key for a in apps}
    assert keys == {key}
    first.dispose()
    second.dispose()


def test_a_configured_secret_key_wins(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    settings = settings_for(url, "server: {secret_key: configured-secret-key-01}")
    with SubmissionStore(url) as store:
        assert signing_key(settings, store) == "configured-secret-key-01"  # type: ignore[arg-type]


def test_console_sessions_end_on_close_and_with_age(store_url: str) -> None:
    store = SubmissionStore(store_url)
    session = store.access.open_session("admin", now=1_000.0)
    assert store.access.session_user(session, 3600, now=1_100.0) == "admin"
    assert store.access.session_user(session, 3600, now=5_000.0) is None  # too old
    store.access.close_session(session)
    assert store.access.session_user(session, 3600, now=1_100.0) is None
    assert store.access.session_user("forged", 3600) is None
    store.dispose()
