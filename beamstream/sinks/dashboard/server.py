"""`DashboardServer`: a Bokeh server in a background thread with its own tornado IOLoop.

The server binds to 127.0.0.1 by default; port 0 takes a free port (see `url`). Websocket
connections are accepted from the bound host and from ``localhost`` / ``127.0.0.1`` on the bound
port, plus any ``allow_websocket_origin`` given.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable, Sequence

from bokeh.application import Application
from bokeh.application.handlers.function import FunctionHandler
from bokeh.document import Document
from bokeh.server.server import BaseServer
from bokeh.server.tornado import BokehTornado
from bokeh.server.util import bind_sockets
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop

__all__ = ["DashboardServer", "default_origins"]

log = logging.getLogger(__name__)

_LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: no request to the dashboard's server needs a larger body (the control API answers 413 above
#: 256 KiB, reading up to this much to say so)
_MAX_BODY = 16 << 20


class _ClosedPageFilter(logging.Filter):
    """Drop Bokeh's warning for updates sent while a page was closing (a closed tab is normal:
    its session ends and the remaining updates have nowhere to go)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "connection was closed" not in record.getMessage()


logging.getLogger("bokeh.server.views.ws").addFilter(_ClosedPageFilter())


def default_origins(address: str, port: int, extra: Sequence[str] = ()) -> list[str]:
    """Websocket origins accepted for a server bound to ``address:port``."""
    hosts = ["localhost", "127.0.0.1"]
    if address not in _LOOPBACK:
        hosts += [address] if address not in ("", "0.0.0.0", "::") else []
        hosts += [socket.gethostname(), socket.getfqdn()]
    origins = [f"{h}:{port}" for h in dict.fromkeys(hosts)]
    return origins + [o for o in extra if o not in origins]


class DashboardServer:
    """Serve a Bokeh app (``make_doc(doc)`` per browser session) from a background thread.

    Parameters
    ----------
    make_doc
        Called in the server thread for each new session with its `Document`.
    port
        TCP port; 0 picks a free one.
    address
        Interface to bind (127.0.0.1: this machine only).
    allow_websocket_origin
        Extra ``host:port`` origins allowed to open the websocket (e.g. a gateway's name).
    path
        URL path of the app.
    """

    def __init__(
        self,
        make_doc: Callable[[Document], None],
        port: int = 0,
        address: str = "127.0.0.1",
        allow_websocket_origin: Sequence[str] = (),
        path: str = "/",
        extra_patterns: Sequence[tuple] = (),
    ):
        self.make_doc = make_doc
        #: further tornado routes served beside the app (e.g. the control API)
        self.extra_patterns = list(extra_patterns)
        self.requested_port = int(port)
        self.address = address
        self.extra_origins = list(allow_websocket_origin)
        self.path = path if path.startswith("/") else "/" + path
        self.port: int | None = None
        self.origins: list[str] = []
        self._thread: threading.Thread | None = None
        self._loop: IOLoop | None = None
        self._server: BaseServer | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """``http://HOST:PORT/path`` of the running server."""
        host = self.address if self.address not in ("", "0.0.0.0", "::") else socket.gethostname()
        return f"http://{host}:{self.port}{self.path}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 10.0) -> str:
        """Start serving; returns the URL (OSError when the port cannot be bound)."""
        if self.running:
            return self.url
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, name="bokeh server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise OSError(f"the dashboard server did not start within {timeout} s")
        if self._error is not None:
            err, self._error = self._error, None
            self._thread.join(1.0)
            raise OSError(
                f"cannot start the dashboard on {self.address}:{self.requested_port}: {err}"
            )
        log.info("dashboard at %s", self.url)
        return self.url

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            self._loop = IOLoop.current()
            sockets, self.port = bind_sockets(self.address, self.requested_port)
            self.origins = default_origins(self.address, self.port, self.extra_origins)
            app = Application(FunctionHandler(self.make_doc))
            tornado_app = BokehTornado(
                {self.path: app},
                extra_websocket_origins=self.origins,
                absolute_url=None,
                extra_patterns=self.extra_patterns,
            )
            http = HTTPServer(tornado_app, xheaders=False, max_body_size=_MAX_BODY)
            http.add_sockets(sockets)
            self._server = BaseServer(self._loop, tornado_app, http)
            self._server.start()
        except BaseException as e:  # reported to start() in the caller's thread
            self._error = e
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            self._loop.start()
        finally:
            try:
                self._server.stop(wait=False)
            except Exception:  # pragma: no cover - best effort on shutdown
                log.debug("dashboard server stop failed", exc_info=True)
            self._server.unlisten()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and end the thread (idempotent)."""
        if self._loop is not None and self.running:
            self._loop.add_callback(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    def sessions(self) -> int:
        """The number of open browser sessions."""
        if self._server is None:
            return 0
        try:
            return sum(len(c.sessions) for c in self._server._tornado._applications.values())
        except Exception:  # pragma: no cover - depends on Bokeh internals
            return 0
