"""The production WSGI server: cheroot in a background thread, stoppable.

``loop run`` and ``loop sim`` (and the browser tests) use it::

    server = WebServer(app, host="0.0.0.0", port=8080)
    server.start()
    print(server.url)
    ...
    server.stop()

Why cheroot: it hands the application the request body as it arrives on the socket, so an
upload goes through the multipart parser straight into ``DATA/incoming`` in one pass. (waitress,
used before, reads every body whole into ``$TMPDIR`` before the application sees a byte: a
200 MB upload was written twice, to the wrong disk, and a full ``$TMPDIR`` reset the
connection with no answer.)

When the application answers before reading the whole body (a 413, a 401, a refused
cross-site request), the rest of the body is read and thrown away in bounded chunks for a
bounded time after the answer is sent, then the connection is closed. Closing at once would
make the kernel reset the connection while the client is still sending, and most clients
would then lose the answer; cheroot's own approach (reading the rest into memory) would let a
client make the device hold hundreds of megabytes.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

from flask import Flask

from libloop.errors import LoopError

log = logging.getLogger(__name__)

#: After an early answer, how long the rest of a request body may still be read and discarded.
DRAIN_SECONDS = 15.0
_DRAIN_CHUNK = 256 * 1024


class WebServerError(LoopError):
    """The web server could not start (e.g. the port is in use)."""

    code = "web_server_error"


def _gateway_class() -> type[Any]:
    from cheroot import wsgi

    class Gateway(wsgi.Gateway_10):
        """cheroot's WSGI 1.0 gateway, with a bounded discard of an unread request body."""

        def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            write = super().start_response(status, headers, exc_info)
            if _unread(self.req.rfile) or (self.req.chunked_read and not _at_eof(self.req.rfile)):
                # The application answers before the body is read: close the connection after
                # this answer instead of letting cheroot read the rest into memory.
                self.req.close_connection = True
            return write

        def respond(self) -> None:
            try:
                super().respond()
            finally:
                if self.req.close_connection:
                    _drain(self.req)

    return Gateway


def _unread(rfile: Any) -> int:
    remaining = getattr(rfile, "remaining", 0)
    return int(remaining) if isinstance(remaining, int) else 0


def _at_eof(rfile: Any) -> bool:
    return bool(getattr(rfile, "closed", False)) or getattr(rfile, "bytes_read", 0) < 0


def _drain(req: Any) -> None:
    """Send what was written, then read and discard the rest of the body for a bounded time."""
    if not _unread(req.rfile) and not req.chunked_read:
        return
    deadline = time.monotonic() + DRAIN_SECONDS
    with contextlib.suppress(OSError, ValueError, Exception):
        req.conn.wfile.flush()
        sock = req.conn.socket
        while time.monotonic() < deadline:
            sock.settimeout(max(0.1, min(2.0, deadline - time.monotonic())))
            if req.chunked_read:
                data = req.rfile.read(_DRAIN_CHUNK)
            else:
                left = _unread(req.rfile)
                if left <= 0:
                    break
                data = req.rfile.read(min(left, _DRAIN_CHUNK))
            if not data:
                break


def _reusable_socket(prepare: Any) -> Any:
    """cheroot's socket set-up, with SO_REUSEADDR also for port 0.

    cheroot leaves it off for an ephemeral port; its connections' TIME_WAIT entries then block
    binding the same port again, and the supervisor's restart of the dashboard fails.
    """

    def prepared(*args: Any, **kwargs: Any) -> socket.socket:
        sock: socket.socket = prepare(*args, **kwargs)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        return sock

    return prepared


def _probe_bind(host: str, port: int) -> None:
    """Raise the ``OSError`` that binding ``host:port`` would raise (cheroot leaks its socket then)."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


class WebServer:
    """Serves a WSGI app with cheroot on one address; ``port=0`` picks a free port.

    Args:
        app: the Flask app (``create_app(...)``).
        host: address to listen on; ``127.0.0.1`` for this machine only, ``0.0.0.0`` for the LAN.
        port: TCP port, 0 for any free one (read it back from ``.port``).
        threads: request worker threads kept ready; more are started under load, up to
            ``max_threads``. Idle keep-alive connections hold no thread.
        timeout: seconds a connection may stay silent (mid-request or idle) before it is closed.
    """

    def __init__(
        self,
        app: Flask,
        host: str = "127.0.0.1",
        port: int = 8080,
        *,
        threads: int = 8,
        max_threads: int = 24,
        timeout: float = 30.0,
    ) -> None:
        self.app = app
        self.host = host
        self._requested_port = port
        self._threads = threads
        self._max_threads = max_threads
        self._timeout = timeout
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (valid after ``start()``)."""
        if self._server is None:
            raise RuntimeError("the web server is not started")
        return int(self._server.bind_addr[1])

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server (``127.0.0.1`` for a wildcard host)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        """Bind the socket (errors surface here) and serve in a daemon thread."""
        if self._thread is not None:
            raise RuntimeError("the web server is already started")
        from cheroot import wsgi

        server = wsgi.Server(
            (self.host, self._requested_port),
            self.app,
            numthreads=self._threads,
            max=self._max_threads,
            server_name="loop",
            timeout=int(self._timeout),
            shutdown_timeout=5,
            request_queue_size=64,
        )
        server.gateway = _gateway_class()
        server.prepare_socket = _reusable_socket(server.prepare_socket)  # type: ignore[method-assign]
        # No server-side body cap: the application decides per route (uploads: the configured
        # limit; everything else 1 MiB) and answers 413 in its own JSON shape.
        server.max_request_body_size = 0
        server.max_request_header_size = 64 * 1024
        # How often the connection loop wakes when idle; also bounds how long stop() waits.
        server.expiration_interval = 0.1
        try:
            _probe_bind(self.host, self._requested_port)
            server.prepare()
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise WebServerError(
                f"The web server cannot listen on {self.host}:{self._requested_port} ({reason}); "
                "choose another port with --port."
            ) from exc
        self._server = server
        self._thread = threading.Thread(target=self._serve, name="loop-web", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            self._server.serve()
        except Exception:  # the serve loop ended by a bug in the server: log it, do not hide it
            log.exception("the web server stopped unexpectedly")

    @property
    def running(self) -> bool:
        """True while the serve loop runs."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, finish or drop open connections, and join the thread."""
        if self._thread is None:
            return
        live = self.app.extensions.get("loop.live")
        if live is not None:
            live.end_streams()  # a live view streams for ever: its thread would hold the stop up
        with contextlib.suppress(OSError, socket.error):
            self._server.stop()
        self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
