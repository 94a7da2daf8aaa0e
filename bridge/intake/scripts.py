"""The scripts the bridge serves to other sites (``widget.js``, ``forms.js``), read once."""

from __future__ import annotations

import hashlib
from pathlib import Path

from flask import Response, request


class Script:
    """A script read once, with its content hash for caching."""

    def __init__(self, path: Path) -> None:
        self.body = path.read_bytes()
        self.etag = hashlib.sha256(self.body).hexdigest()[:16]

    def response(self) -> Response:
        """The script for any site: cached five minutes, or for a year when asked for by
        its hash (``?v=<etag>``); 304 when the browser has it."""
        if request.if_none_match.contains(self.etag):
            return Response(status=304, headers={"ETag": f'"{self.etag}"'})
        immutable = request.args.get("v") == self.etag
        response = Response(self.body, mimetype="application/javascript")
        response.headers["ETag"] = f'"{self.etag}"'
        response.headers["Cache-Control"] = (
            "public, max-age=31536000, immutable" if immutable else "public, max-age=300"
        )
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
