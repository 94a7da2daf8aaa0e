"""Files on forms and the widget: limits by content, kept with the submission, linked from
the ticket, served only as downloads, and removed with the submission."""

from __future__ import annotations

import io
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from bridge.app import create_app
from bridge.attachments import Links
from bridge.config import ConfigError, settings_from_text
from bridge.outbox.store import SubmissionStore

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
PDF = b"%PDF-1.7\n" + b"1 0 obj\n" * 20
HTML = b"<!doctype html><html><body><script>document.title='ran'</script></body></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'

CONFIG = """
proprofs: {{account_email: a@example.com, token: t0ken-for-tests}}
store: {store}
files: {{directory: {files}}}
routes:
  contact:
    kind: form
    fields:
      name: {{type: string, required: true}}
      email: {{type: email, required: true}}
      message: {{type: text, required: true}}
      files: {{type: file}}
    attachments: {{max_size: 2KB, max_files: 2, max_total: 3KB, types: [image/png, application/pdf, text/html, image/svg+xml]}}
  proof:
    kind: form
    fields:
      email: {{type: email, required: true}}
      receipt: {{type: file, required: true}}
  help:
    kind: widget
    fields:
      email: {{type: email, required: true}}
      message: {{type: text, required: true}}
      screenshot: {{type: file}}
"""
PERSON = {"name": "Pat Doe", "email": "pat@example.com", "message": "The invoice is wrong"}
JSON = {"Accept": "application/json"}


def make(tmp_path: Path, config: str = CONFIG) -> tuple[FlaskClient, SubmissionStore]:
    url = f"sqlite:///{tmp_path / 'files.db'}"
    settings = settings_from_text(config.format(store=url, files=tmp_path / "kept"), env={})
    store = SubmissionStore(url)
    return create_app(settings, store=store).test_client(), store


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[FlaskClient, SubmissionStore]]:
    client, store = make(tmp_path)
    yield client, store
    store.dispose()


def post(
    client: FlaskClient, files: list[tuple[bytes, str]], route: str = "contact", **headers: str
) -> Any:
    data: dict[str, Any] = {**PERSON, "files": [(io.BytesIO(b), n) for b, n in files]}
    return client.post(
        f"/forms/{route}", data=data, content_type="multipart/form-data", headers=headers
    )


def links(description: str) -> list[str]:
    return re.findall(r"(/files/\S+)", description)


def kept(tmp_path: Path) -> list[Path]:
    return sorted(p for p in (tmp_path / "kept").rglob("*") if p.is_file())


# --- limits ----------------------------------------------------------------------------------


def test_a_file_over_the_size_limit_is_413_naming_it_and_the_form_keeps_the_rest(
    web: tuple[FlaskClient, SubmissionStore], tmp_path: Path
) -> None:
    client, store = web
    big = PNG + b"\0" * 3000
    answer = post(client, [(PNG, "ok.png"), (big, "huge.png")], **JSON)
    assert answer.status_code == 413
    assert answer.json["code"] == "file_too_large"
    assert answer.json["errors"] == {"files": ["huge.png is 3.1 KB; files may be at most 2.0 KB."]}
    page = post(client, [(PNG, "ok.png"), (big, "huge.png")])  # the HTML form
    assert page.status_code == 413
    html = page.get_data(as_text=True)
    assert "huge.png is 3.1 KB; files may be at most 2.0 KB." in html
    assert 'value="Pat Doe"' in html and "The invoice is wrong</textarea>" in html
    assert 'enctype="multipart/form-data"' in html
    assert sum(store.counts().values()) == 0 and kept(tmp_path) == []


def test_types_are_read_from_the_content_not_the_name_or_the_claim(
    web: tuple[FlaskClient, SubmissionStore],
) -> None:
    client, store = web
    exe = b"MZ\x90\x00\x03\x00\x00\x00" + os.urandom(64)
    answer = client.post(
        "/forms/contact",
        data={**PERSON, "files": [(io.BytesIO(exe), "cat.png", "image/png")]},
        content_type="multipart/form-data",
        headers=JSON,
    )
    assert answer.status_code == 415 and answer.json["code"] == "file_type_refused"
    assert answer.json["errors"]["files"] == [
        "cat.png is application/x-msdownload; this form takes PNG, PDF, HTML, SVG."
    ]
    # A real PNG called invoice.exe is a PNG, kept and offered as invoice.png.
    assert post(client, [(PNG, "invoice.exe")], **JSON).status_code == 202
    assert sum(store.counts().values()) == 1
    (kept_file,) = store.attachments.of(store.list()[0].id)
    assert (kept_file.name, kept_file.type) == ("invoice.png", "image/png")


def test_count_and_total_limits_and_a_required_file(
    web: tuple[FlaskClient, SubmissionStore],
) -> None:
    client, store = web
    three = post(client, [(PNG, "a.png"), (PDF, "b.pdf"), (PNG + b"1", "c.png")], **JSON)
    assert three.status_code == 422
    assert three.json["errors"]["files"] == ["3 files were attached; at most 2 are accepted."]
    heavy = post(client, [(PNG + b"\0" * 1700, "a.png"), (PDF + b"\0" * 1700, "b.pdf")], **JSON)
    assert heavy.status_code == 413
    assert "together they may be at most 3.0 KB" in heavy.json["message"]
    missing = client.post(
        "/forms/proof",
        data={"email": "pat@example.com", "receipt": (io.BytesIO(b""), "")},
        content_type="multipart/form-data",
        headers=JSON,
    )
    assert missing.status_code == 422 and missing.json["errors"] == {"receipt": ["Attach a file."]}
    assert sum(store.counts().values()) == 0


def test_a_file_on_a_field_that_takes_none_is_refused(
    web: tuple[FlaskClient, SubmissionStore],
) -> None:
    client, _ = web
    answer = client.post(
        "/forms/contact",
        data={**PERSON, "message": (io.BytesIO(PNG), "m.png")},
        content_type="multipart/form-data",
        headers=JSON,
    )
    assert answer.status_code == 422
    assert "not accepted on this field" in answer.json["errors"]["message"][0]


def test_a_file_field_is_for_forms_and_widgets_only(tmp_path: Path) -> None:
    hook = CONFIG + "  alerts:\n    kind: hook\n    fields:\n      dump: {{type: file}}\n"
    with pytest.raises(
        ConfigError, match=r"routes.alerts.fields.dump.type: only forms and widgets"
    ):
        make(tmp_path, hook)
    odd = CONFIG.replace("files: {{type: file}}", "files: {{type: file, max_length: 3}}")
    with pytest.raises(ConfigError, match="a file field takes no max_length"):
        make(tmp_path, odd)
    small = CONFIG.replace("max_total: 3KB", "max_total: 1KB")
    with pytest.raises(ConfigError, match="max_total cannot be less than max_size"):
        make(tmp_path, small)


# --- kept and linked -------------------------------------------------------------------------


def test_the_ticket_links_each_file_and_each_link_gives_the_exact_bytes(
    web: tuple[FlaskClient, SubmissionStore], tmp_path: Path
) -> None:
    client, store = web
    answer = post(client, [(PNG, "screen shot.png"), (PDF, "Rechnung №7.pdf")], **JSON)
    assert answer.status_code == 202
    submission = store.get(answer.json["id"])
    assert submission is not None
    description = submission.draft.description or ""
    assert description.startswith("The invoice is wrong")
    assert "- screen shot.png (72 bytes, image/png)" in description
    assert "- Rechnung №7.pdf (169 bytes, application/pdf)" in description
    assert description.endswith(f"Reference: {submission.id}")  # the footer stays last
    first, second = links(description)
    png = client.get(first)
    assert png.status_code == 200 and png.data == PNG
    assert png.headers["Content-Type"] == "image/png"
    assert png.headers["Content-Disposition"].startswith('attachment; filename="screen shot.png"')
    pdf = client.get(second)
    assert pdf.data == PDF
    assert "filename*=UTF-8''Rechnung%20%E2%84%967.pdf" in pdf.headers["Content-Disposition"]
    assert len(kept(tmp_path)) == 2
    rows = store.attachments.of(submission.id)
    assert [(r.name, r.size, r.type) for r in rows] == [
        ("screen shot.png", len(PNG), "image/png"),
        ("Rechnung №7.pdf", len(PDF), "application/pdf"),
    ]


@pytest.mark.parametrize(("data", "name"), [(HTML, "page.png"), (SVG, "logo.svg")])
def test_markup_is_only_ever_a_download_that_cannot_run(
    web: tuple[FlaskClient, SubmissionStore], data: bytes, name: str
) -> None:
    client, store = web
    answer = post(client, [(data, name)], **JSON)
    assert answer.status_code == 202
    sub = store.get(answer.json["id"])
    assert sub is not None
    served = client.get(links(sub.draft.description or "")[0])
    assert served.status_code == 200 and served.data == data
    assert served.headers["Content-Type"] == "application/octet-stream"
    assert served.headers["Content-Disposition"].startswith("attachment;")
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in served.headers["Content-Security-Policy"]
    assert "default-src 'none'" in served.headers["Content-Security-Policy"]


def test_tampered_expired_and_foreign_tokens_get_404_and_the_console_can_extend(
    web: tuple[FlaskClient, SubmissionStore],
) -> None:
    client, store = web
    answer = post(client, [(PNG, "a.png")], **JSON)
    sid = answer.json["id"]
    sub = store.get(sid)
    assert sub is not None
    good = links(sub.draft.description or "")[0]
    token = good.rsplit("/", 1)[1]
    assert client.get(good).status_code == 200
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert client.get(f"/files/{tampered}").status_code == 404
    # Signed with another key, or by another part of the bridge (a widget receipt), or for
    # another route: none opens the file.
    assert client.get(f"/files/{Links('another-key').token('contact', sid, 0)}").status_code == 404
    from itsdangerous import URLSafeTimedSerializer

    app_key = client.application.extensions["bridge"].signing_key
    receipt = URLSafeTimedSerializer(app_key, salt="bridge-widget-receipt:help").dumps({"s": sid})
    assert client.get(f"/files/{receipt}").status_code == 404
    assert client.get(f"/files/{Links(app_key).token('proof', sid, 0)}").status_code == 404
    assert client.get(f"/files/{Links(app_key).token('contact', sid, 5)}").status_code == 404
    # Expired: the link stops; extended, it works again (the same link, as in the ticket).
    store.attachments.extend_links(sid, time.time() - 1)
    gone = client.get(good)
    assert gone.status_code == 404 and "expired" in gone.json["message"]
    assert gone.headers["X-Content-Type-Options"] == "nosniff"
    store.attachments.extend_links(sid, time.time() + 3600)
    assert client.get(good).data == PNG


def test_the_same_bytes_twice_are_kept_once_and_survive_one_purge(
    web: tuple[FlaskClient, SubmissionStore], tmp_path: Path
) -> None:
    client, store = web
    first = post(client, [(PNG, "a.png")], **JSON).json["id"]
    client.post(
        "/forms/contact",
        data={**PERSON, "message": "Another one", "files": [(io.BytesIO(PNG), "b.png")]},
        content_type="multipart/form-data",
        headers=JSON,
    )
    assert len(kept(tmp_path)) == 1
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE submissions SET state='delivered', updated_at=0 WHERE id=?", (first,)
        )
    for path in kept(tmp_path):
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    assert store.privacy.purge(older_than=60, state="delivered") == 1
    assert len(kept(tmp_path)) == 1  # the other submission still refers to it
    assert store.attachments.of(first) == []


def test_files_of_a_double_submit_are_part_of_what_is_compared(
    web: tuple[FlaskClient, SubmissionStore],
) -> None:
    client, store = web
    one = post(client, [(PNG, "a.png")], **JSON)
    same = post(client, [(PNG, "a.png")], **JSON)
    other = post(client, [(PDF, "a.pdf")], **JSON)
    assert one.json["id"] == same.json["id"]
    assert other.json["id"] != one.json["id"]
    assert sum(store.counts().values()) == 2


def test_a_file_store_that_fails_is_503_and_nothing_is_stored(
    web: tuple[FlaskClient, SubmissionStore], tmp_path: Path
) -> None:
    client, store = web
    (tmp_path / "kept").write_text("a file where the directory should be")
    answer = post(client, [(PNG, "a.png")], **JSON)
    assert answer.status_code == 503 and answer.json["code"] == "files_unavailable"
    assert sum(store.counts().values()) == 0


# --- the widget ------------------------------------------------------------------------------


def test_the_widget_posts_files_as_multipart_and_its_status_lists_them(
    web: tuple[FlaskClient, SubmissionStore],
) -> None:
    client, store = web
    config = client.get("/widget/help/config").json
    assert (
        config["files"]["accept"]
        == "image/png,image/jpeg,image/gif,image/webp,application/pdf,text/plain"
    )
    assert config["files"]["max_files"] == 5
    payload = '{"fields": {"email": "wes@example.com", "message": "Broken button"}}'
    answer = client.post(
        "/widget/help",
        data={"payload": payload, "screenshot": (io.BytesIO(PNG), "pasted.png")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 202, answer.json
    status = client.get(f"/widget/help/status/{answer.json['receipt']}").json
    assert [(f["name"], f["size"], f["type"]) for f in status["files"]] == [
        ("pasted.png", len(PNG), "image/png")
    ]
    assert client.get(status["files"][0]["url"]).data == PNG
    # The same JSON without files still works; files without the payload part do not.
    plain = client.post("/widget/help", json={"fields": {"email": "w@example.com", "message": "x"}})
    assert plain.status_code == 202
    assert client.get(f"/widget/help/status/{plain.json['receipt']}").json["files"] == []
    bare = client.post(
        "/widget/help",
        data={"screenshot": (io.BytesIO(PNG), "p.png")},
        content_type="multipart/form-data",
    )
    assert bare.status_code == 400 and "payload" in bare.json["message"]
    assert sum(store.counts().values()) == 2


def test_quarantined_files_go_when_discarded_and_follow_a_release(tmp_path: Path) -> None:
    config = CONFIG.replace(
        "  proof:",
        "    spam: {{content: {{keywords: [casino], scores: {{keyword: 5}}}}}}\n  proof:",
    )
    client, store = make(tmp_path, config)
    spam = client.post(
        "/forms/contact",
        data={**PERSON, "message": "casino bonus", "files": [(io.BytesIO(PNG), "a.png")]},
        content_type="multipart/form-data",
        headers=JSON,
    ).json["id"]
    held = client.post(
        "/forms/contact",
        data={**PERSON, "message": "casino? no, invoice", "files": [(io.BytesIO(PDF), "b.pdf")]},
        content_type="multipart/form-data",
        headers=JSON,
    ).json["id"]
    assert store.quarantine.count() == 2 and len(kept(tmp_path)) == 2
    for path in kept(tmp_path):
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    assert store.quarantine.discard(spam)
    assert store.attachments.of(spam) == [] and len(kept(tmp_path)) == 1
    released = store.quarantine.release(held)
    assert released is not None and released.id == held
    assert [a.name for a in store.attachments.of(held)] == ["b.pdf"]
    store.dispose()


def test_the_console_lists_a_submissions_files_and_extends_their_links(tmp_path: Path) -> None:
    config = CONFIG.replace(
        "routes:\n",
        "admin: {{trusted_header: X-Forwarded-User, secure_cookies: false}}\n"
        "server: {{trusted_proxies: [127.0.0.1]}}\nroutes:\n",
    )
    client, store = make(tmp_path, config)
    staff = {"X-Forwarded-User": "sam"}
    sid = post(client, [(PNG, "screen.png"), (PDF, "invoice.pdf")], **JSON).json["id"]
    store.attachments.extend_links(sid, time.time() - 60)  # both links have expired
    page = client.get(f"/admin/submissions/{sid}", headers=staff).get_data(as_text=True)
    assert ">screen.png</a>" in page and ">invoice.pdf</a>" in page
    assert page.count("(expired)") == 2
    link = re.search(r'href="(/files/[^"]+)">screen.png', page)
    assert link is not None and client.get(link.group(1)).status_code == 404
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf is not None
    refused = client.post(f"/admin/submissions/{sid}/extend", headers=staff)
    assert refused.status_code == 400  # no CSRF token
    extended = client.post(
        f"/admin/submissions/{sid}/extend", data={"csrf_token": csrf.group(1)}, headers=staff
    )
    assert extended.status_code == 303
    assert all(a.expires_at > time.time() + 29 * 86400 for a in store.attachments.of(sid))
    assert client.get(link.group(1)).data == PNG  # the link already in the ticket works again
    page = client.get(f"/admin/submissions/{sid}", headers=staff).get_data(as_text=True)
    assert "(expired)" not in page
    store.dispose()


def test_links_never_come_from_the_host_header(tmp_path: Path) -> None:
    """A post that names another host gets no link to it; with server.public_url the
    links use it, and check-config says when it is missing."""
    client, store = make(tmp_path)
    answer = post(client, [(PNG, "a.png")], **JSON, **{"Host": "evil.example"})
    assert answer.status_code == 202
    description = store.get(answer.json["id"]).draft.description or ""
    assert "evil.example" not in description and "\n  /files/" in description
    store.dispose()
    configured = CONFIG.replace(
        "routes:\n", "server: {{public_url: https://bridge.example.com}}\nroutes:\n"
    )
    client, store = make(tmp_path / "b", configured)
    answer = post(client, [(PNG, "a.png")], **JSON, **{"Host": "evil.example"})
    description = store.get(answer.json["id"]).draft.description or ""
    assert "\n  https://bridge.example.com/files/" in description
    assert "evil.example" not in description
    store.dispose()
    url = f"sqlite:///{tmp_path / 'w.db'}"
    warned = settings_from_text(CONFIG.format(store=url, files=tmp_path / "kept"), env={})
    assert any(
        "server.public_url" in w and "routes.contact.fields.files" in w for w in warned.warnings
    )
