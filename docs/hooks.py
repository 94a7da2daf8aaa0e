"""MkDocs hooks: the reference pages are generated from the code at build time."""

from __future__ import annotations

from typing import Any

from bridge import cliref
from bridge.config import reference as configref

GENERATED = {
    "reference/config.md": ("<!-- config reference -->", configref.markdown),
    "reference/cli.md": ("<!-- command reference -->", cliref.markdown),
}


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    marker, make = GENERATED.get(page.file.src_uri, ("", None))
    if make is None:
        return markdown
    if marker not in markdown:
        raise ValueError(f"{page.file.src_uri} lost its {marker!r} marker")
    return markdown.replace(marker, make())
