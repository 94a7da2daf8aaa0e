"""The system's Chromium driven by Playwright, and small static sites on other local origins."""

from __future__ import annotations

import contextlib
import functools
import http.server
import itertools
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bridge.proprofs.emulator import EmulatorServer
from tests.conftest import IN_CI
from tests.e2e.harness import bridge_server, free_port, write_config

CHROMIUM = os.environ.get("BRIDGE_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]


def need_chromium() -> None:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        reason = f"Chromium is not installed at {CHROMIUM} (make browser installs it)"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def static_site(files: dict[str, str]) -> Iterator[str]:
    """Serve ``files`` (name → HTML) from 127.0.0.1 on a port of its own: another origin.

    A file's text may hold ``{bridge}``: it is filled in by :func:`fill` once the bridge's
    port is known (pick the bridge's port after the sites are up, so none can take it).
    """
    root = Path(os.environ.get("TMPDIR", "/tmp")) / f"site-{os.getpid()}-{next(_sites)}"
    root.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        (root / name).write_text(body)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    _roots[url] = root
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()
        _roots.pop(url, None)
        shutil.rmtree(root, ignore_errors=True)


_sites = itertools.count()
_roots: dict[str, Path] = {}


def add_page(site: str, name: str, body: str) -> str:
    """Put one more page on a running site; its URL."""
    (_roots[site] / name).write_text(body)
    return f"{site}/{name}"


def fill(site: str, **values: str) -> None:
    """Put late values (the bridge's URL) into a site's pages."""
    for page in _roots[site].iterdir():
        text = page.read_text()
        for key, value in values.items():
            text = text.replace("{" + key + "}", value)
        page.write_text(text)


def screenshot(page: object, name: str, *, full_page: bool = True) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)  # type: ignore[attr-defined]
    return path


PICTURES = os.environ.get("BRIDGE_PICTURES")  # `make pictures` sets it to docs/img


def picture(page: object, name: str, *, full_page: bool = True) -> Path:
    """A screenshot of a clean page for the README and the docs: kept with the test's other
    artifacts, and written to ``$BRIDGE_PICTURES`` too when set (``make pictures``)."""
    path = screenshot(page, name, full_page=full_page)
    if PICTURES:
        Path(PICTURES).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(PICTURES) / path.name)
    return path


@contextlib.contextmanager
def site_and_bridge(
    emulator: EmulatorServer,
    tmp_path: Path,
    pages: dict[str, str],
    routes: Callable[[str], str],
    *,
    linked: bool = False,
    top: str = "",
) -> Iterator[tuple[str, str]]:
    """A static site of ``pages`` (``{bridge}`` filled in) and a real bridge serving
    ``routes(site)`` (and ``top``, more top-level config); with ``linked``, tickets link
    back to it (``server.public_url``). Yields (bridge URL, site URL)."""
    need_chromium()
    with static_site(pages) as site:
        port = free_port()
        bridge = f"http://127.0.0.1:{port}"
        fill(site, bridge=bridge)
        config = write_config(
            tmp_path / "bridge.yaml",
            f"sqlite:///{tmp_path / 'b.db'}",
            emulator,
            routes=routes(site),
            top="\n".join(
                filter(None, [f'server: {{public_url: "{bridge}"}}' if linked else "", top])
            ),
        )
        with bridge_server(config, port=port):
            yield bridge, site
