"""`DashboardSink`: serves the live Bokeh dashboard of a run while it processes.

The sink's own thread only waits for the run to end; browser sessions read the hub from the
Bokeh server's thread at ``update_hz`` (see `DashboardApp`), so the dashboard never slows
processing. The URL goes into ``hub.info["dashboard_url"]`` (and so into the run status).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
import sys
import time
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from beamstream.arrays import load_array
from beamstream.processors.params import ParamError
from beamstream.sinks.base import Sink
from beamstream.sinks.dashboard import assembled
from beamstream.sinks.dashboard.app import DashboardApp
from beamstream.sinks.dashboard.server import DashboardServer
from beamstream.sinks.hub import Hub, Snapshot

__all__ = [
    "DashboardSink",
    "load_mask",
    "dashboard_sinks",
    "connect_reset",
    "connect_control",
    "DEFAULT_PORT",
]

#: port of the dashboard of ``beamstream run`` unless told otherwise (a free port when taken)
DEFAULT_PORT = 5006

log = logging.getLogger(__name__)


def load_mask(mask: str | Path | np.ndarray | None) -> np.ndarray | None:
    """A pixel mask (True = masked) from an array or a file (`beamstream.arrays.load_array`;
    an ``.npz`` gives its ``mask`` array or its only one)."""
    try:
        arr = load_array("mask", mask, default_key="mask")
    except ParamError as e:
        raise ValueError(str(e)) from None
    return None if arr is None else np.asarray(arr, dtype=bool)


class DashboardSink(Sink):
    """Start a Bokeh server showing the hub's results for the duration of a run.

    Parameters
    ----------
    port
        TCP port (0: a free port; the URL is in ``url`` and ``hub.info["dashboard_url"]``).
    update_hz
        Refresh rate of every browser session (bounded to 0.2..10 Hz; 4 by default).
    on_reset
        Callable for the "reset accumulation" button (e.g. ``runner.reset``).
    title
        Page title.
    address
        Interface to bind: 127.0.0.1 (default) serves this machine only.
    allow_websocket_origin
        Extra ``host:port`` origins allowed (when browsing through another name or a tunnel).
    mask
        Detector pixel mask to overlay on images: array or .npy/.npz/HDF5 file.
    max_image
        Largest displayed image side (larger images are block-averaged for display).
    history
        Per-train records shown in the scalar plots.
    linger
        Seconds to keep serving after the run ended (0: stop with the run).
    out
        Where the URL is announced (None: nowhere).
    port_fallback
        When ``port`` is taken, serve on a free port instead of failing.
    token
        The control token: only sessions opened with ``?token=<token>`` (the announced
        `control_url`) may reset the accumulation; any other session (any local process can
        open one) sees the button disabled, and a click it sends anyway is refused and counted
        (``refused_resets``). None: a random token per run; ``""``: no token (refused unless the
        dashboard is bound to the loopback interface).
    """

    name = "dashboard"

    def __init__(
        self,
        *,
        port: int = 0,
        update_hz: float = 4.0,
        on_reset: Callable[[], None] | None = None,
        title: str = "beamstream",
        address: str = "127.0.0.1",
        allow_websocket_origin: Sequence[str] = (),
        mask: str | np.ndarray | None = None,
        max_image: int = 512,
        history: int = 2000,
        linger: float = 0.0,
        out: TextIO | None = sys.stderr,
        port_fallback: bool = False,
        token: str | None = None,
    ):
        super().__init__(port=port, update_hz=update_hz, title=title, address=address)
        if not 0 <= int(port) < 65536:
            raise ValueError(f"port: expected 0..65535, got {port!r}")
        if not float(update_hz) > 0:
            raise ValueError(f"update_hz: expected a positive rate, got {update_hz!r}")
        self.update_hz = float(update_hz)
        self.on_reset = on_reset
        self.title = title
        self.mask = load_mask(mask)
        self.max_image = int(max_image)
        self.history = int(history)
        self.linger = float(linger)
        self.out = out
        self.port_fallback = bool(port_fallback)
        self.apps: list[DashboardApp] = []
        #: the run's `beamstream.control.controller.Controller` (settings, ROIs, versions)
        self.control: Any = None
        self.control_token: str | None = None
        self.token = control_token(token, address)
        self.refused_resets = 0
        self.server = DashboardServer(self._make_doc, port, address, allow_websocket_origin)

    @property
    def url(self) -> str | None:
        """The dashboard's URL while it is served."""
        return self.server.url if self.server.port is not None else None

    @property
    def control_url(self) -> str | None:
        """The URL whose sessions may reset the accumulation (with the control token)."""
        url = self.url
        if url is None or not self.token:
            return url
        return f"{url}?{urllib.parse.urlencode({'token': self.token})}"

    def _make_doc(self, doc: Any) -> None:
        hub = self._hub
        if hub is None:  # pragma: no cover - sessions only exist after open()
            return
        assembled.use_config(hub.config_text, hub.info.get("config_path") or "<string>")
        allowed = session_has_token(doc, self.token)  # may reset and steer the run
        app = DashboardApp(
            hub,
            update_hz=self.update_hz,
            on_reset=self.on_reset,
            title=self.title,
            mask=self.mask,
            max_image=self.max_image,
            history=self.history,
            control=self.control if allowed else None,
            reset_allowed=allowed,
            on_refused=self._refused,
        )
        self.apps = [*self.apps[-15:], app]
        app.build(doc)

    def open(self, hub: Hub) -> None:
        """Start the server (in the caller's thread, so the URL is known before data flows).

        Opening again for the same hub while serving does nothing (a server started ahead of
        the run, e.g. to open a browser first, is kept).
        """
        if self.server.running and self._hub is hub:
            return
        self._hub = hub
        try:
            url = self.server.start()
        except OSError as e:
            if not self.port_fallback or self.server.requested_port == 0:
                raise
            log.warning("%s; serving the dashboard on a free port instead", e)
            self.server.requested_port = 0
            url = self.server.start()
        hub.info["dashboard_url"] = url  # (never the control URL: hub info is shown and stored)
        if self.out is not None:
            self.out.write(f"beamstream dashboard: {self.control_url}\n")
            self.out.flush()

    def _refused(self) -> None:
        self.refused_resets += 1

    def serve(self, hub: Hub) -> str:
        """Serve ``hub`` without a runner's sink thread (e.g. from a notebook); returns the URL."""
        self.open(hub)
        return self.server.url

    def write(self, snapshot: Snapshot) -> None:
        """Nothing to do: sessions read the hub themselves at their own rate."""

    def close(self) -> None:
        if self.linger > 0:
            time.sleep(self.linger)
        self.stop()

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        self.server.stop()


def control_token(token: str | None, address: str) -> str:
    """The control token: ``token``, or a random one when None; no token only on loopback."""
    if token is None:
        return secrets.token_urlsafe(16)
    if not token and not ipaddress.ip_address(_host(address)).is_loopback:
        raise ValueError(
            f"token: a dashboard bound to {address} needs a control token (any host that can "
            "reach it could reset the run); leave token unset for a random one"
        )
    return str(token)


def _host(address: str) -> str:
    try:
        ipaddress.ip_address(address)
        return address
    except ValueError:
        return "127.0.0.1" if address == "localhost" else "0.0.0.0"


def session_has_token(doc: Any, token: str) -> bool:
    """Whether the Bokeh session of ``doc`` was opened with ``?token=<token>``."""
    if not token:
        return True
    request = getattr(getattr(doc, "session_context", None), "request", None)
    given = (getattr(request, "arguments", None) or {}).get("token", [])
    return any(
        hmac.compare_digest(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v), token)
        for v in given
    )


def dashboard_sinks(
    sinks: list[Sink], enabled: bool | None = True, port: int | None = None
) -> list[Sink]:
    """The sinks of a run with its dashboard on or off (``beamstream run``).

    ``enabled=None`` keeps what the config says; True adds a `DashboardSink` unless the config
    has one (on ``port``, default `DEFAULT_PORT` or a free port when that is taken); False
    removes dashboard sinks. ``port`` overrides the port of a configured dashboard too.
    """
    others = [s for s in sinks if not isinstance(s, DashboardSink)]
    dashboards = [s for s in sinks if isinstance(s, DashboardSink)]
    if enabled is False:
        return others
    if port is not None:
        for d in dashboards:
            d.server.requested_port = int(port)
    if enabled and not dashboards:
        chosen = DEFAULT_PORT if port is None else int(port)
        dashboards = [DashboardSink(port=chosen, port_fallback=port is None)]
    return others + dashboards


def connect_control(sinks: list[Sink], control: Any, token: str | None = None) -> str | None:
    """Serve the control API of ``control`` on the first dashboard's server (before it starts);
    its address, or None when there is no dashboard."""
    from beamstream.control.api import api_routes, is_loopback, new_token

    for s in sinks:
        if isinstance(s, DashboardSink):
            if token is None and not is_loopback(s.server.address):
                token = s.token or new_token()  # one token for the page and the API
            s.server.extra_patterns.extend(api_routes(control, token))
            s.control = control
            s.control_token = token
            return s.server.address
    return None


def connect_reset(sinks: list[Sink], reset: Callable[[], None]) -> None:
    """Give dashboards without a reset callback ``reset`` (e.g. ``runner.reset``)."""
    for s in sinks:
        if isinstance(s, DashboardSink) and s.on_reset is None:
            s.on_reset = reset
