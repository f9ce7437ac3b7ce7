"""Who may steer from the dashboard: every session on 127.0.0.1, only sessions opened with the
token on any other interface; the API on the dashboard's server follows the same token."""

from __future__ import annotations

from types import SimpleNamespace

from beamstream.config import parse_config
from beamstream.control.controller import Controller
from beamstream.sinks.dashboard.sink import DashboardSink, connect_control, steering_allowed

from .configs import DSSC


def _doc(args: dict) -> SimpleNamespace:
    request = SimpleNamespace(arguments=args)
    return SimpleNamespace(session_context=SimpleNamespace(request=request))


def test_steering_needs_the_token_beyond_loopback():
    assert steering_allowed(_doc({}), None)
    assert steering_allowed(_doc({"token": [b"t0k"]}), "t0k")
    assert not steering_allowed(_doc({}), "t0k")
    assert not steering_allowed(_doc({"token": [b"guess"]}), "t0k")
    assert not steering_allowed(SimpleNamespace(), "t0k")


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
