"""``bridge demo``'s pieces: where its data goes, the command to name in what it prints, and
the sample shop page (another origin) that carries the contact form and the widget."""

from __future__ import annotations

import functools
import http.server
import shutil
import sys
import threading
from pathlib import Path

SHOP = """<!doctype html>
<html lang="en">
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo shop</title>
<style>
  body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 2rem auto;
         padding: 0 1rem; }}
  label {{ display: block; margin: .75rem 0 .25rem; }}
  input, textarea {{ width: 100%; padding: .4rem; font: inherit; }}
  button {{ margin-top: 1rem; padding: .5rem 1.25rem; font: inherit; }}
</style>
<h1>Demo shop</h1>
<p>A page on another origin ({site}) than the bridge ({bridge}), as your own site would be:
the form below posts to the bridge, and the Help button is the support widget.</p>
<form action="{bridge}/forms/contact" method="post">
  <label>Name <input name="name" required></label>
  <label>Email <input name="email" type="email" required></label>
  <label>Topic <select name="topic"><option>sales</option><option>support</option>
    <option>billing</option></select></label>
  <label>Message <textarea name="message" rows="4" required></textarea></label>
  <input type="hidden" name="_next" value="{site}/thanks.html">
  <button>Send</button>
</form>
<script src="{bridge}/forms.js" defer></script>
<script src="{bridge}/widget.js" data-route="support" async></script>
</html>
"""
THANKS = """<!doctype html><meta charset="utf-8"><title>Thanks</title>
<p style="font: 16px system-ui, sans-serif; margin: 2rem">Thanks: the bridge took it, and the
emulator has the ticket. <a href="index.html">Back to the shop</a></p>
"""


def data_directory(given: str) -> Path:
    """The demo's one directory (the database, its lock file, kept files), made if need be."""
    path = Path(given).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def command_name() -> str:
    """How to run ``bridge`` here, for the commands the demo prints: ``bridge`` when that
    is the one on PATH, else the running script's absolute path."""
    running = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    if running is None or running.name != "bridge":
        return f"{sys.executable} -m bridge.cli"
    found = shutil.which("bridge")
    return "bridge" if found and Path(found).resolve() == running else str(running)


def serve_shop(directory: Path, port: int, bridge: str) -> tuple[http.server.HTTPServer, str]:
    """Serve the sample shop from ``directory`` on 127.0.0.1:``port`` (a thread); its URL."""
    site = f"http://127.0.0.1:{port}"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "index.html").write_text(SHOP.format(site=site, bridge=bridge))
    (directory / "thanks.html").write_text(THANKS)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            """Quiet: the bridge's own log is the one to read."""

    handler = functools.partial(Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, name="demo-shop", daemon=True).start()
    return server, site
