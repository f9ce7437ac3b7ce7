"""The control API over HTTP (tornado): read the config, versions and status; change, reset.

Routes (under ``/api/v1``)::

    GET   /config     the current version: number, TOML text and the same as JSON
    GET   /status     the run's status and the current version
    GET   /versions   every version (config texts left out)
    PATCH /config     a change: JSON {"set": {"a.b[0].c": 1}, "unset": [...], "toml": "..."},
                      or a whole TOML text with Content-Type application/toml
    POST  /reset      restart the accumulation (a new segment)
    POST  /snapshot   publish a snapshot to every sink now

The handlers serve on the dashboard's Bokeh (tornado) server, or on `ControlServer` with
``--no-dashboard``. Bound to 127.0.0.1 no token is needed (unless one is set); bound to any other
interface every request must carry ``Authorization: Bearer TOKEN``. Bodies are limited to
`MAX_BODY` bytes; requests that change something must say ``Content-Type: application/json`` (or
``application/toml``), which a web page of another origin cannot send without the server's consent.
Blocking work (validation, waiting for the boundary) runs off the IOLoop.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
import threading
import tomllib
from typing import Any, Protocol

from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.web import Application, RequestHandler

from beamstream.control.patch import Change, ChangeError

__all__ = ["api_routes", "ControlServer", "MAX_BODY", "PREFIX", "new_token", "is_loopback"]

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
#: largest request body accepted (a whole config with its comments fits many times over)
MAX_BODY = 256 * 1024
#: larger bodies are still read (up to this) to answer 413 with a message; beyond, tornado
#: closes the connection without reading them
MAX_READ = 16 << 20
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class Control(Protocol):
    """What the handlers need (`beamstream.control.controller.Controller` provides it)."""

    def current_config(self) -> tuple[int, str]: ...
    def status_info(self) -> dict[str, Any]: ...
    def versions(self) -> list[dict[str, Any]]: ...
    def apply(self, change: Change) -> dict[str, Any]: ...
    def reset(self, client: str = "") -> dict[str, Any]: ...
    def snapshot(self) -> dict[str, Any]: ...


def is_loopback(address: str) -> bool:
    return address in _LOOPBACK


def new_token() -> str:
    """A random token for an API bound beyond this machine."""
    return secrets.token_urlsafe(24)


class _Handler(RequestHandler):
    """Common rules: token, body size, JSON answers and errors."""

    def initialize(self, control: Control, token: str | None) -> None:
        self.control = control
        self.token = token

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")

    def prepare(self) -> None:
        if self.token is not None:
            auth = self.request.headers.get("Authorization", "")
            given = auth[7:] if auth.startswith("Bearer ") else ""
            if not given or not hmac.compare_digest(given.encode(), self.token.encode()):
                why = "missing" if not given else "wrong"
                self.fail(401, f"{why} token: send 'Authorization: Bearer TOKEN'")
                return
        size = int(self.request.headers.get("Content-Length", 0) or 0)
        if size > MAX_BODY or len(self.request.body or b"") > MAX_BODY:
            self.fail(413, f"request body of {size} bytes: at most {MAX_BODY} bytes accepted")
            return
        if self.request.method in ("PATCH", "POST"):
            kind = self.request.headers.get("Content-Type", "").split(";")[0].strip()
            if kind not in ("application/json", "application/toml"):
                self.fail(415, "expected Content-Type: application/json (or application/toml)")

    def fail(self, code: int, message: str) -> None:
        self.set_status(code)
        self.finish(json.dumps({"error": message}))

    def answer(self, value: Any, code: int = 200) -> None:
        self.set_status(code)
        self.finish(json.dumps(value, default=str))

    def client(self, body: Any = None) -> str:
        name = self.request.headers.get("X-Beamstream-Client", "")
        if isinstance(body, dict) and isinstance(body.get("client"), str):
            name = body["client"]
        return f"{name[:100] or 'client'}@{self.request.remote_ip}"

    def json_body(self) -> Any:
        raw = self.request.body or b"{}"
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ChangeError(f"request body: not valid JSON: {e}") from None

    async def run(self, fn: Any, *args: Any) -> None:
        """Call ``fn(*args)`` off the IOLoop and answer with its result (or its error)."""
        try:
            result = await IOLoop.current().run_in_executor(None, fn, *args)
        except ChangeError as e:
            self.fail(422, str(e))
            return
        except Exception as e:  # the run goes on; the client learns what happened
            log.exception("control request failed")
            self.fail(500, f"{type(e).__name__}: {e}")
            return
        self.answer(result)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish(json.dumps({"error": self._reason}))


class ConfigHandler(_Handler):
    def get(self) -> None:
        number, text = self.control.current_config()
        self.answer({"version": number, "toml": text, "config": tomllib.loads(text)})

    async def patch(self) -> None:
        kind = self.request.headers.get("Content-Type", "").split(";")[0].strip()
        try:
            if kind == "application/toml":
                text = (self.request.body or b"").decode("utf-8", errors="strict")
                change = Change(toml=text, client=self.client())
            else:
                body = self.json_body()
                change = Change.from_json(body, self.client(body))
        except (ChangeError, UnicodeDecodeError) as e:
            self.fail(400, str(e))
            return
        await self.run(self.control.apply, change)


class StatusHandler(_Handler):
    def get(self) -> None:
        self.answer(self.control.status_info())


class VersionsHandler(_Handler):
    def get(self) -> None:
        self.answer(self.control.versions())


class ResetHandler(_Handler):
    async def post(self) -> None:
        try:
            body = self.json_body() if self.request.body else {}
        except ChangeError as e:
            self.fail(400, str(e))
            return
        await self.run(self.control.reset, self.client(body))


class SnapshotHandler(_Handler):
    async def post(self) -> None:
        await self.run(self.control.snapshot)


class NotFoundHandler(_Handler):
    def prepare(self) -> None:
        self.fail(404, f"no such API route: {self.request.method} {self.request.path}")


def api_routes(control: Control, token: str | None = None) -> list[tuple[str, type, dict]]:
    """Tornado routes of the API (for ``extra_patterns`` of a Bokeh server or an Application)."""
    kw = {"control": control, "token": token}
    return [
        (PREFIX + "/config", ConfigHandler, kw),
        (PREFIX + "/status", StatusHandler, kw),
        (PREFIX + "/versions", VersionsHandler, kw),
        (PREFIX + "/reset", ResetHandler, kw),
        (PREFIX + "/snapshot", SnapshotHandler, kw),
        (PREFIX + "/.*", NotFoundHandler, kw),
    ]


class ControlServer:
    """The API on its own port (runs without a dashboard), in a background thread.

    Parameters
    ----------
    control
        The run's controller.
    port
        TCP port (0: a free one; see `url`).
    address
        Interface: 127.0.0.1 by default. Any other needs a ``token`` (one is made when None).
    token
        Required on every request when given.
    """

    def __init__(
        self,
        control: Control,
        port: int = 0,
        address: str = "127.0.0.1",
        token: str | None = None,
    ):
        if not is_loopback(address) and token is None:
            token = new_token()
        self.control, self.address, self.token = control, address, token
        self.requested_port = int(port)
        self.port: int | None = None
        self._loop: IOLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.address in ("", "0.0.0.0") else self.address
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> str:
        self._thread = threading.Thread(target=self._run, name="control API", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            raise OSError(
                f"cannot serve the control API on {self.address}:{self.requested_port}: "
                f"{self._error or 'timeout'}"
            )
        log.info("control API at %s", self.url)
        return self.url

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            self._loop = IOLoop.current()
            app = Application(api_routes(self.control, self.token))
            server = HTTPServer(app, max_body_size=MAX_READ)
            sockets = server_sockets(self.address, self.requested_port)
            self.port = sockets[0].getsockname()[1]
            server.add_sockets(sockets)
        except BaseException as e:
            self._error = e
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            self._loop.start()
        finally:
            server.stop()
            loop.close()

    def stop(self, timeout: float = 5.0) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.add_callback(self._loop.stop)
            self._thread.join(timeout)


def server_sockets(address: str, port: int) -> list[Any]:
    from tornado.netutil import bind_sockets

    return bind_sockets(port, address=address or None)
