"""Files people attach: what a file really is, and where the bridge keeps it.

The ProProfs create-ticket call takes no attachment (PROPROFS_API.md), so the bridge
keeps the files itself. A file's type is read from its first bytes, never from its name
or from what the browser claims. The embedded store is a directory, content-addressed:
a file is written under a temporary name, synced, renamed into place and its directory
synced, so once ``put`` returns the bytes survive a crash; the same bytes sent twice are
kept once.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import filetype
from itsdangerous import BadSignature, URLSafeSerializer

#: Types the bridge recognises by their first bytes, with the extension it serves them as.
KNOWN_TYPES = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "application/pdf": ".pdf",
    "application/zip": ".zip",
    "text/plain": ".txt",
    "text/html": ".html",
    "image/svg+xml": ".svg",
}
#: Tags that make a text file a page a browser would render or run, wherever they stand.
_MARKUP = re.compile(
    rb"<(svg|!doctype\s+html|html|head|body|script|iframe|object|embed|meta|link|style|form|img"
    rb"|a|base|frameset|frame|math|template|xml-stylesheet|\?xml-stylesheet)[\s/>]",
    re.IGNORECASE,
)
#: The extensions a file of each type may keep; any other is replaced with the first.
EXTENSIONS = {
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg"),
    "image/gif": (".gif",),
    "image/webp": (".webp",),
    "application/pdf": (".pdf",),
    "application/zip": (".zip",),
    "text/plain": (".txt", ".csv", ".log", ".md", ".json"),
    "text/html": (".html", ".htm"),
    "image/svg+xml": (".svg",),
}
DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")
#: What a route accepts when it names no types: pictures, PDFs and plain text.
DEFAULT_TYPES = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
)
#: Types a browser would run as a page in the bridge's origin; always served as a download.
ACTIVE_TYPES = ("text/html", "image/svg+xml")
LABELS = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/gif": "GIF",
    "image/webp": "WebP",
    "application/pdf": "PDF",
    "application/zip": "ZIP",
    "text/plain": "text",
    "text/html": "HTML",
    "image/svg+xml": "SVG",
}
#: A file no submission refers to is left alone this long (seconds) after it was last
#: written: a submission that wrote the same bytes may still be committing.
WRITE_GRACE = 300.0
#: The salt of ``/files/<token>`` links (no other token of the bridge opens a file).
LINK_SALT = "bridge.files"


def sniff(data: bytes) -> str | None:
    """The type ``data`` is, read from its content: binary formats by their signature
    (the ``filetype`` package), text as text unless it holds markup anywhere near its
    start (HTML, SVG, a script), which a browser would run whatever its first line says.
    ``None`` when it is neither a known signature nor text."""
    guessed = filetype.guess_mime(data)
    if guessed is not None:
        return "image/jpeg" if guessed == "image/jpg" else str(guessed)
    head = data[:8192]
    if b"\x00" in head:
        return None
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not just a character cut at the 8 KiB mark
            return None
    markup = _MARKUP.search(head)
    if markup:
        return "image/svg+xml" if markup.group(1).lower() == b"svg" else "text/html"
    return "text/plain"


def human_size(size: int) -> str:
    """``834 bytes``, ``12.3 KB``, ``4.0 MB`` (powers of 1,000, as people read sizes)."""
    if size < 1000:
        return f"{size} bytes"
    if size < 1_000_000:
        return f"{size / 1000:.1f} KB"
    if size < 1_000_000_000:
        return f"{size / 1_000_000:.1f} MB"
    return f"{size / 1_000_000_000:.1f} GB"


def safe_name(name: str | None, kind: str) -> str:
    """A file name fit to show and to offer as a download: no path, no control or
    separator characters, at most 120 characters, and an extension that says what the
    content is (``evil.html`` holding a PNG is ``evil.png``); ``file`` when nothing is left."""
    base = unicodedata.normalize("NFC", (name or "").replace("\\", "/").rsplit("/", 1)[-1])
    base = "".join(c for c in base if unicodedata.category(c)[0] not in ("C", "Z") or c == " ")
    base = base.strip(" .")[:110].strip(" .") or "file"
    allowed = EXTENSIONS.get(kind, ())
    stem, dot, extension = base.rpartition(".")
    if dot and stem and f".{extension.lower()}" in allowed:
        return base
    if not allowed:
        return base  # a type no route takes: refused by name as it was sent
    return (stem.strip(" .") if dot and stem else base) + allowed[0]


@dataclass(frozen=True)
class StoredFile:
    """A file as the file store holds it: named by its digest."""

    digest: str  # sha256 of the bytes, hex: the file's name in the store
    size: int


@dataclass(frozen=True)
class Upload:
    """One file as a person sent it, its type already read from its bytes."""

    field: str
    name: str
    type: str
    data: bytes = b""

    @property
    def size(self) -> int:
        """The file's length in bytes."""
        return len(self.data)


@dataclass(frozen=True)
class Attachment:
    """A kept file of one submission, as the outbox records it."""

    submission_id: str
    position: int
    route: str
    field: str
    name: str
    type: str
    size: int
    digest: str
    created_at: float
    expires_at: float

    @classmethod
    def from_row(cls, row: Any) -> Attachment:
        """An attachment from its database row."""
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Limits:
    """A route's limits on files (``routes.<route>.attachments``)."""

    max_size: int = 10_000_000
    max_files: int = 5
    max_total: int = 20_000_000
    types: tuple[str, ...] = DEFAULT_TYPES

    def allowed_names(self) -> str:
        """The allowed types, as people name them (for messages)."""
        return ", ".join(LABELS.get(t, t) for t in self.types)


def check(limits: Limits, uploads: Sequence[Upload]) -> tuple[int, dict[str, list[str]]] | None:
    """What is wrong with ``uploads`` under ``limits``, per field: ``(413, errors)`` when a
    size limit is passed, ``(415, errors)`` when a file's content is not an allowed type,
    ``(422, errors)`` for a count; ``None`` when all fit. Every message names the file and
    the limit."""
    errors: dict[str, list[str]] = {}
    status = 422
    for upload in uploads:
        if upload.size > limits.max_size:
            status = 413
            errors.setdefault(upload.field, []).append(
                f"{upload.name} is {human_size(upload.size)}; files may be at most "
                f"{human_size(limits.max_size)}."
            )
        elif upload.type not in limits.types:
            status = 413 if status == 413 else 415
            what = LABELS.get(upload.type, upload.type) if upload.type else "not a known type"
            errors.setdefault(upload.field, []).append(
                f"{upload.name} is {what}; this form takes {limits.allowed_names()}."
            )
    if len(uploads) > limits.max_files:
        errors.setdefault(uploads[limits.max_files].field, []).append(
            f"{len(uploads)} files were attached; at most {limits.max_files} are accepted."
        )
    total = sum(u.size for u in uploads)
    if total > limits.max_total and not any(u.size > limits.max_size for u in uploads):
        status = 413
        errors.setdefault(uploads[-1].field, []).append(
            f"The files add up to {human_size(total)}; together they may be at most "
            f"{human_size(limits.max_total)}."
        )
    return (status, errors) if errors else None


#: The heading of the files list a ticket's description ends with.
FILES_HEADING = "Attachments:"


def description_block(attachments: Iterable[tuple[Upload, str]]) -> str:
    """The lines a ticket's description gets for its files: name, size, type and link."""
    lines = [FILES_HEADING]
    for upload, link in attachments:
        lines.append(f"- {upload.name} ({human_size(upload.size)}, {upload.type})")
        lines.append(f"  {link}")
    return "\n".join(lines)


def without_files(description: str) -> str:
    """A description without the files list :func:`description_block` put at its end
    (the files are shown apart, with their links)."""
    head, found, _ = description.rpartition(f"\n\n{FILES_HEADING}\n- ")
    if found:
        return head
    return "" if description.startswith(f"{FILES_HEADING}\n- ") else description


class Links:
    """``/files/<token>`` tokens: signed, naming the route, the submission and the file's
    place in it. When a link expires is the outbox's ``expires_at`` (the console can extend
    it), not the token's: a link already in a ticket can be made to live longer."""

    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeSerializer(secret, salt=LINK_SALT)

    def token(self, route: str, submission_id: str, position: int) -> str:
        """The signed token of one file's download link."""
        return str(self._serializer.dumps([route, submission_id, position]))

    def read(self, token: str) -> tuple[str, str, int] | None:
        """The (route, submission, position) a token names; ``BadSignature`` otherwise."""
        try:
            route, submission_id, position = self._serializer.loads(token)
        except (BadSignature, TypeError, ValueError):
            return None
        if not (isinstance(route, str) and isinstance(submission_id, str)):
            return None
        if not isinstance(position, int) or isinstance(position, bool):
            return None
        return route, submission_id, position


class FileStore(Protocol):
    """Where kept files live: a directory, or an S3-compatible bucket."""

    def put(self, data: bytes) -> StoredFile:
        """Keep ``data`` (once per content); what was kept."""

    def read(self, digest: str) -> bytes | None:
        """The bytes of ``digest``; ``None`` once they are gone."""

    def delete(self, digest: str, *, written_before: float | None = None) -> bool:
        """Remove ``digest`` (only if written before ``written_before``); whether it went."""

    def stale(self, written_before: float) -> set[str]:
        """Digests of files written before ``written_before``."""


class DirectoryStore:
    """Files under one directory, named by the SHA-256 of their bytes."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"DirectoryStore({str(self.root)!r})"

    def path(self, digest: str) -> Path:
        """Where ``digest`` lives: two levels of fan-out under the directory."""
        if not DIGEST_RE.match(digest):
            raise ValueError("not a file digest")
        return self.root / digest[:2] / digest

    def put(self, data: bytes) -> StoredFile:
        """Keep ``data`` durably; returns once it is on disk under its digest."""
        digest = hashlib.sha256(data).hexdigest()
        final = self.path(digest)
        if final.exists() and final.stat().st_size == len(data):
            # Kept already: marked as written now, so that a sweep or a purge running
            # beside this submission's commit leaves it (see ``delete``).
            os.utime(final)
            return StoredFile(digest, len(data))
        final.parent.mkdir(parents=True, exist_ok=True)
        temporary = final.parent / f".{digest}.{secrets.token_hex(4)}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            temporary.unlink(missing_ok=True)
            raise
        os.close(fd)
        os.replace(temporary, final)
        _sync_directory(final.parent)
        return StoredFile(digest, len(data))

    def read(self, digest: str) -> bytes | None:
        try:
            return self.path(digest).read_bytes()
        except (FileNotFoundError, ValueError):
            return None

    def delete(self, digest: str, *, written_before: float | None = None) -> bool:
        """Remove a file; with ``written_before``, only if it was last written earlier
        (a submission committing now may have just written the same bytes)."""
        try:
            path = self.path(digest)
            if written_before is not None and path.stat().st_mtime >= written_before:
                return False
            path.unlink()
        except (FileNotFoundError, ValueError):
            return False
        return True

    def stale(self, written_before: float) -> set[str]:
        """Files last written before ``written_before`` (candidates for the orphan sweep)."""
        found = set()
        for digest in self.digests():
            try:
                if self.path(digest).stat().st_mtime < written_before:
                    found.add(digest)
            except FileNotFoundError:
                continue
        return found

    def digests(self) -> set[str]:
        """Every file kept (for sweeping files no submission refers to)."""
        if not self.root.is_dir():
            return set()
        return {
            p.name
            for sub in self.root.iterdir()
            if sub.is_dir() and len(sub.name) == 2
            for p in sub.iterdir()
            if DIGEST_RE.match(p.name)
        }


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class S3Store:
    """Files in an S3-compatible bucket, under ``prefix`` + their digest (several bridge
    instances share it). A put returns once the service has stored the object."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def __repr__(self) -> str:
        return f"S3Store({self.bucket!r}, prefix={self.prefix!r})"

    def key(self, digest: str) -> str:
        """The object key of ``digest`` under the configured prefix."""
        if not DIGEST_RE.match(digest):
            raise ValueError("not a file digest")
        return f"{self.prefix}{digest}"

    def put(self, data: bytes) -> StoredFile:
        digest = hashlib.sha256(data).hexdigest()
        # Written again even when present: the write time is what keeps it from a sweep.
        self.client.put_object(
            Bucket=self.bucket,
            Key=self.key(digest),
            Body=data,
            ContentType="application/octet-stream",
        )
        return StoredFile(digest, len(data))

    def read(self, digest: str) -> bytes | None:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key(digest))
        except ValueError:
            return None
        except Exception as exc:  # botocore's ClientError: NoSuchKey and the like
            if _s3_missing(exc):
                return None
            raise
        data: bytes = answer["Body"].read()
        return data

    def delete(self, digest: str, *, written_before: float | None = None) -> bool:
        try:
            key = self.key(digest)
        except ValueError:
            return False
        if written_before is not None:
            try:
                head = self.client.head_object(Bucket=self.bucket, Key=key)
            except Exception as exc:
                if _s3_missing(exc):
                    return False
                raise
            if head["LastModified"].timestamp() >= written_before:
                return False
        self.client.delete_object(Bucket=self.bucket, Key=key)
        return True

    def stale(self, written_before: float) -> set[str]:
        found = set()
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        for page in pages:
            for item in page.get("Contents", ()):
                digest = item["Key"][len(self.prefix) :]
                if DIGEST_RE.match(digest) and item["LastModified"].timestamp() < written_before:
                    found.add(digest)
        return found


def _s3_missing(exc: Exception) -> bool:
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    return code in ("NoSuchKey", "404", "NotFound")


def open_store(settings: Any) -> FileStore:
    """The file store ``files:`` configures (``config.FileSettings``)."""
    if settings.s3 is not None:
        try:
            import boto3
        except ImportError:  # pragma: no cover - check-config refuses this first
            raise RuntimeError("files.s3 needs boto3: pip install 'proprofs-bridge[s3]'") from None
        s3 = settings.s3
        client = boto3.client(
            "s3",
            endpoint_url=s3.endpoint_url,
            region_name=s3.region,
            aws_access_key_id=s3.access_key_id,
            aws_secret_access_key=s3.secret_access_key,
        )
        return S3Store(client, s3.bucket, s3.prefix)
    return DirectoryStore(settings.directory)
