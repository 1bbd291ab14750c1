"""The production WSGI server: waitress in a background thread, stoppable.

``loop run`` and ``loop sim`` (and the browser tests) use it::

    server = WebServer(app, host="0.0.0.0", port=8080)
    server.start()
    print(server.url)
    ...
    server.stop()
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any, Self

from flask import Flask

from libloop.errors import LoopError


class WebServerError(LoopError):
    """The web server could not start (e.g. the port is in use)."""

    code = "web_server_error"


class WebServer:
    """Serves a WSGI app with waitress on one address; ``port=0`` picks a free port.

    Args:
        app: the Flask app (``create_app(...)``).
        host: address to listen on; ``127.0.0.1`` for this machine only, ``0.0.0.0`` for the LAN.
        port: TCP port, 0 for any free one (read it back from ``.port``).
        threads: request worker threads; a few are enough (uploads stream, deletes wait briefly).
    """

    def __init__(self, app: Flask, host: str = "127.0.0.1", port: int = 8080, *, threads: int = 6) -> None:
        self.app = app
        self.host = host
        self._requested_port = port
        self._threads = threads
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def port(self) -> int:
        """The bound port (valid after ``start()``)."""
        if self._server is None:
            raise RuntimeError("the web server is not started")
        return int(self._server.effective_port)

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server (``localhost`` for a wildcard host)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        """Bind the socket (errors surface here) and serve in a daemon thread."""
        if self._thread is not None:
            raise RuntimeError("the web server is already started")
        import importlib

        from waitress import create_server

        # Our own map and task dispatcher, so a failed bind can be cleaned up completely.
        socket_map: dict[int, Any] = {}
        dispatcher = importlib.import_module("waitress.task").ThreadedTaskDispatcher()
        dispatcher.set_thread_count(self._threads)
        try:
            self._server = create_server(
                self.app,
                map=socket_map,
                _dispatcher=dispatcher,
                host=self.host,
                port=self._requested_port,
                threads=self._threads,
                ident="loop",
                clear_untrusted_proxy_headers=True,
                channel_timeout=60,
                # Larger receive buffers: uploads of tens of MB arrive in fewer, bigger writes.
                inbuf_overflow=1 << 20,
            )
        except OSError as exc:
            dispatcher.shutdown(timeout=5)
            importlib.import_module("waitress.wasyncore").close_all(socket_map)
            raise WebServerError(
                f"The web server cannot listen on {self.host}:{self._requested_port} ({exc.strerror}); "
                "choose another port with --port."
            ) from exc
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, name="loop-web", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        from waitress import wasyncore

        server = self._server
        socket_map = server._map
        try:
            while not self._stopping.is_set() and socket_map:
                wasyncore.loop(timeout=0.5, map=socket_map, use_poll=True, count=1)
        finally:
            server.task_dispatcher.shutdown(timeout=5)
            wasyncore.close_all(socket_map)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, finish or drop open connections, and join the thread."""
        if self._thread is None:
            return
        self._stopping.set()
        self._server.pull_trigger()
        self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
