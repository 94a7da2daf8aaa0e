"""The emulator served on a socket of its own, in a thread, with kept-alive connections."""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import threading
from typing import Any

from flask import Flask
from werkzeug.exceptions import InternalServerError
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from .app import create_emulator
from .rules import API_PREFIX
from .state import EmulatorState

log = logging.getLogger(__name__)


#: How long a kept-alive connection may sit idle before the emulator closes it.
IDLE_SECONDS = 60.0
#: The largest request body read ahead on a kept-alive connection; a larger one is served the
#: old way, on a connection closed after it.
READ_AHEAD_LIMIT = 8 * 1024 * 1024


class _KeepAliveHandler(WSGIRequestHandler):
    """werkzeug's request handler, with the connection kept open for the next request
    (HTTP/1.1 keep-alive), as a real API's is: a client's pooled connections are reused, and
    a call does not pay for a new connection and a new server thread. werkzeug's own handler
    closes every connection, because it cannot tell where an unread body ends; this one reads
    the body whole (its Content-Length) before the app runs, so the next request on the
    connection starts where this one ended. Anything else (a chunked body, an ``Expect``, a
    length it will not read ahead) goes to werkzeug's handler, which closes the connection."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_SECONDS
    server: _EmulatorHTTPServer

    def setup(self) -> None:
        super().setup()
        # The head and the body are two writes; on a connection that stays open, Nagle's
        # algorithm would hold the body back until the client's delayed ACK (~40 ms).
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.opened(self.connection)

    def finish(self) -> None:
        self.server.closed(self.connection)
        super().finish()

    def log_error(self, format: str, *args: Any) -> None:
        if format.startswith("Request timed out"):
            return  # an idle kept-alive connection closing is no error
        super().log_error(format, *args)

    def run_wsgi(self) -> None:
        length = self._length()
        if length is None:
            self.close_connection = True
            super().run_wsgi()
            return
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            self.close_connection = True  # the client went away mid-body
            return
        self.environ = environ = self.make_environ()
        environ["wsgi.input"] = io.BytesIO(body)
        status, headers, payload = self._call(environ)
        code = int(status.split(None, 1)[0])
        try:
            self.send_response(code, status.partition(" ")[2])
            for key, value in headers:
                if key.lower() != "content-length":
                    self.send_header(key, value)
            bodiless = code < 200 or code in (204, 304) or self.command == "HEAD"
            if not bodiless:
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if not bodiless:
                self.wfile.write(payload)
            self.wfile.flush()
        except OSError:
            self.close_connection = True  # shut on purpose (a dropped create), or gone

    def _length(self) -> int | None:
        """The body's length when it can be read ahead; None when werkzeug must serve it."""
        if self.headers.get("Transfer-Encoding") or self.headers.get("Expect"):
            return None
        raw = self.headers.get("Content-Length") or "0"
        if not raw.isdigit() or int(raw) > READ_AHEAD_LIMIT:
            return None
        return int(raw)

    def _call(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        """The app's status, headers and whole body."""
        started: list[Any] = []
        chunks: list[bytes] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            started[:] = [status, headers]
            return chunks.append

        try:
            result = self.server.app(environ, start_response)
            try:
                chunks.extend(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except Exception:
            log.exception("the emulator failed on %s %s", self.command, self.path)
            chunks.clear()
            chunks.extend(InternalServerError()(environ, start_response))
            self.close_connection = True
        return started[0], started[1], b"".join(chunks)


class _EmulatorHTTPServer(ThreadedWSGIServer):
    """A thread per connection, and the open connections known, so that a stopped emulator
    stops answering on them too (a client's pooled connection must not reach a server that
    is down)."""

    def __init__(self, host: str, port: int, app: Flask) -> None:
        super().__init__(host, port, app, handler=_KeepAliveHandler)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def opened(self, sock: socket.socket) -> None:
        with self._open_lock:
            self._open.add(sock)

    def closed(self, sock: socket.socket) -> None:
        with self._open_lock:
            self._open.discard(sock)

    def close_connections(self) -> None:
        with self._open_lock:
            kept = list(self._open)
        for sock in kept:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class EmulatorServer:
    """The emulator on a threaded loopback server in a background thread."""

    def __init__(self, state: EmulatorState, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state
        self.app = create_emulator(state)
        self.server = _EmulatorHTTPServer(host, port, self.app)
        self.thread = threading.Thread(
            target=self.server.serve_forever, daemon=True, name="proprofs-emulator"
        )

    @property
    def url(self) -> str:
        """An absolute URL on the emulator."""
        return f"http://{self.server.host}:{self.server.port}"

    @property
    def base_url(self) -> str:
        """The API's base URL, for ``proprofs.base_url``."""
        return self.url + API_PREFIX

    def __repr__(self) -> str:
        return f"EmulatorServer(url={self.url!r})"

    def start(self) -> EmulatorServer:
        """Listen on loopback, in a thread."""
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and close every connection."""
        self.server.shutdown()
        self.server.server_close()
        self.server.close_connections()
        self.thread.join(timeout=5)

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
