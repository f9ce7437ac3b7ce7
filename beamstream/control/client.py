"""`ControlClient`: a small Python client of a run's control API (standard library only).

>>> ctl = ControlClient("http://127.0.0.1:5006")            # doctest: +SKIP
>>> ctl.set({"processors.frames.rules[0].min": 200})        # doctest: +SKIP
{'number': 2, 'kind': 'new_segment', 'applied': True, 'first_train_id': 10421, ...}
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

from beamstream.control.api import PREFIX

__all__ = ["ControlClient", "ControlError"]


class ControlError(RuntimeError):
    """The API refused a request (``status`` is the HTTP status, the message its reason)."""

    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class ControlClient:
    """Talk to the control API at ``url`` (the run's dashboard or ``--control-port`` URL).

    Parameters
    ----------
    url
        ``http://HOST:PORT`` (a path after it is ignored).
    token
        Sent as ``Authorization: Bearer``; default: the ``BEAMSTREAM_TOKEN`` environment variable.
    client
        A name recorded with every change (default: ``python``).
    timeout
        Seconds per request (a change waits up to ~5 s for its first train).
    """

    def __init__(
        self, url: str, token: str | None = None, client: str = "python", timeout: float = 30.0
    ):
        parts = url.split("/")
        self.base = "/".join(parts[:3]) if url.startswith("http") else "http://" + parts[0]
        self.token = token if token is not None else os.environ.get("BEAMSTREAM_TOKEN")
        self.client = client
        self.timeout = timeout

    def request(
        self, method: str, route: str, body: bytes | None = None, kind: str = "application/json"
    ) -> Any:
        """One request; the decoded JSON answer (`ControlError` when refused)."""
        req = urllib.request.Request(self.base + PREFIX + route, data=body, method=method)
        req.add_header("X-Beamstream-Client", self.client)
        if body is not None or method in ("POST", "PATCH"):
            req.add_header("Content-Type", kind)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                message = json.loads(raw)["error"]
            except (ValueError, KeyError, TypeError):
                message = raw.decode("utf-8", "replace")[:500] or e.reason
            raise ControlError(e.code, str(message)) from None

    def config(self) -> dict[str, Any]:
        """``{"version": N, "toml": TEXT, "config": {...}}`` of the current version."""
        return self.request("GET", "/config")

    def status(self) -> dict[str, Any]:
        return self.request("GET", "/status")

    def versions(self) -> list[dict[str, Any]]:
        return self.request("GET", "/versions")

    def set(
        self, values: dict[str, Any] | None = None, unset: list[str] | None = None
    ) -> dict[str, Any]:
        """Change dotted keys (``{"processors.frames.pattern": ["on", "off"]}``); the new
        version (``applied``: it reached a train within the server's wait)."""
        body = {"set": values or {}, "unset": unset or [], "client": self.client}
        return self.request("PATCH", "/config", json.dumps(body).encode())

    def replace(self, toml_text: str) -> dict[str, Any]:
        """Replace the whole config by ``toml_text``."""
        return self.request("PATCH", "/config", toml_text.encode(), kind="application/toml")

    def reset(self) -> dict[str, Any]:
        return self.request("POST", "/reset", json.dumps({"client": self.client}).encode())

    def snapshot(self) -> dict[str, Any]:
        return self.request("POST", "/snapshot", b"{}")
