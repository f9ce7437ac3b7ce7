"""Who may steer from the dashboard: sessions opened with the run's control token (as for a
reset); the API on the dashboard's server needs that token beyond 127.0.0.1."""

from __future__ import annotations

from types import SimpleNamespace

from beamstream.config import parse_config
from beamstream.control.controller import Controller
from beamstream.sinks.dashboard.sink import DashboardSink, connect_control, session_has_token

from .configs import DSSC


def _doc(args: dict) -> SimpleNamespace:
    request = SimpleNamespace(arguments=args)
    return SimpleNamespace(session_context=SimpleNamespace(request=request))


def test_steering_needs_the_control_token():
    assert session_has_token(_doc({}), "")
    assert session_has_token(_doc({"token": [b"t0k"]}), "t0k")
    assert not session_has_token(_doc({}), "t0k")
    assert not session_has_token(_doc({"token": [b"guess"]}), "t0k")
    assert not session_has_token(SimpleNamespace(), "t0k")


def test_connect_control_makes_a_token_beyond_loopback():
    ctl = Controller(parse_config(DSSC))
    local = DashboardSink(port=0, out=None)
    assert connect_control([local], ctl) == "127.0.0.1" and local.control_token is None
    routes = local.server.extra_patterns
    assert routes and routes[0][2]["token"] is None and local.control is ctl
    remote = DashboardSink(port=0, address="0.0.0.0", out=None)
    connect_control([remote], ctl)
    assert (
        remote.control_token and remote.server.extra_patterns[0][2]["token"] == remote.control_token
    )
    assert connect_control([], ctl) is None
