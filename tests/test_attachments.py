"""Files people attach: types read from content, kept durably and once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.attachments import DirectoryStore, safe_name, sniff

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
SAMPLES = {
    "image/png": PNG,
    "image/jpeg": b"\xff\xd8\xff\xe0" + b"\x00" * 16,
    "image/gif": b"GIF89a" + b"\x01" * 10,
    "image/webp": b"RIFF\x10\x00\x00\x00WEBPVP8 ",
    "application/pdf": b"%PDF-1.7\n%\xe2\xe3",
    "application/zip": b"PK\x03\x04" + b"\x00" * 20,
    "text/plain": "Invoice 4471 — totals attached\n".encode(),
    "text/html": b"  <!DOCTYPE html><html><script>alert(1)</script>",
    "image/svg+xml": b'<?xml version="1.0"?>\n<!-- logo --><svg onload="alert(1)"/>',
}


@pytest.mark.parametrize(("kind", "data"), SAMPLES.items())
def test_a_files_type_is_read_from_its_content(kind: str, data: bytes) -> None:
    assert sniff(data) == kind


def test_names_and_claims_do_not_matter_and_binary_junk_is_nothing_known() -> None:
    # An HTML page renamed to .png is still HTML; random bytes are none of the known types.
    assert sniff(SAMPLES["text/html"]) == "text/html"
    assert sniff(os.urandom(64) + b"\x00") is None
    assert sniff(b"\x00\x01\x02 not text") is None
    assert sniff(b"<HTML><body>hi") == "text/html"
    assert sniff(b"Just a note <b>bold</b>") == "text/plain"  # markup inside text is text


def test_the_store_keeps_bytes_under_their_digest_once(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "files")
    first = store.put(PNG)
    again = store.put(PNG)
    assert first == again and first.size == len(PNG)
    assert store.read(first.digest) == PNG
    assert store.digests() == {first.digest}
    assert not list((tmp_path / "files").rglob("*.tmp"))
    assert oct(store.path(first.digest).stat().st_mode & 0o777) == "0o600"
    assert store.read("../../etc/passwd") is None and store.delete("x" * 64) is False
    with pytest.raises(ValueError):
        store.path("../escape")
    assert store.delete(first.digest) and store.read(first.digest) is None


def test_a_file_is_whole_or_absent_when_the_process_dies_while_writing(tmp_path: Path) -> None:
    """Killed in the middle of a write: no file under a digest holds partial bytes."""
    script = (
        "import os, sys\n"
        "from bridge.attachments import DirectoryStore\n"
        "store = DirectoryStore(sys.argv[1])\n"
        "real = os.fsync\n"
        "def die(fd):\n"
        "    os.kill(os.getpid(), 9)\n"
        "os.fsync = die\n"
        "store.put(b'x' * 1_000_000)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "files")], timeout=60)
    assert done.returncode == -9
    store = DirectoryStore(tmp_path / "files")
    assert store.digests() == set()  # only a temporary file, never linked by its digest
    assert len(list((tmp_path / "files").rglob(".*.tmp"))) == 1


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"Dear team,\n<html><body><script>alert(1)</script></body></html>", "text/html"),
        (b"hello there\n\n<script src=//evil.example/x.js></script>", "text/html"),
        (b"notes\n<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", "image/svg+xml"),
        (b"line one\r\n<iframe src=https://evil.example>", "text/html"),
        (b"a < b and c > d, plain words", "text/plain"),
    ],
    ids=["html after a line", "script", "svg", "iframe", "comparison"],
)
def test_markup_is_found_wherever_it_starts(data: bytes, kind: str) -> None:
    assert sniff(data) == kind


@pytest.mark.parametrize(
    ("name", "kind", "offered"),
    [
        ("evil.html", "image/png", "evil.png"),
        ("photo.JPEG", "image/jpeg", "photo.JPEG"),
        ("report", "application/pdf", "report.pdf"),
        ("notes.csv", "text/plain", "notes.csv"),
        ("page.svg", "text/plain", "page.txt"),
        ("x.png.html", "text/html", "x.png.html"),
        ("../../etc/passwd", "text/plain", "passwd.txt"),
        ("", "image/gif", "file.gif"),
    ],
)
def test_the_offered_name_says_what_the_content_is(name: str, kind: str, offered: str) -> None:
    assert safe_name(name, kind) == offered


def test_the_persons_words_come_back_without_the_footer_and_the_files_list() -> None:
    from bridge.attachments import Upload, description_block, without_files
    from bridge.mapping import footer, without_footer

    def as_written(text: str) -> str:  # what the widget's status view shows of it
        return without_files(without_footer(text))

    upload = Upload(field="files", name="invoice.pdf", type="application/pdf", data=b"%PDF-1.7")
    block = description_block([(upload, "https://bridge.example.com/files/abc")])
    words = "Please see the attached invoice.\n\nAttachments: are they fine?"
    assert as_written(f"{words}\n\n{block}{footer('pb-0123456789abcdef0123')}") == words
    assert as_written(f"{block}{footer('pb-0123456789abcdef0123')}") == ""  # files alone
    assert as_written("No files here.") == "No files here."
