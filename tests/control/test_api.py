"""The control API over real HTTP (tornado) with a real controller and a stand-in run."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from beamstream.config import parse_config
from beamstream.control.api import MAX_BODY, ControlServer
from beamstream.control.client import ControlClient, ControlError
from beamstream.control.controller import Controller
from beamstream.control.patch import Change
from beamstream.control.versions import VersionLog
from tests.conftest import wait_for

from .configs import DSSC
from .fakerun import FakeRun


@pytest.fixture
def served(tmp_path: Path):
    ctl = Controller(parse_config(DSSC, str(tmp_path / "dssc.toml")), roots=[tmp_path])
    ctl.status = lambda: {"processed": 7}
    ctl.on_snapshot = lambda: None
    server = ControlServer(ctl, port=0)
    server.start()
    try:
        with FakeRun(ctl) as run:
            yield ctl, server, run
    finally:
        server.stop()


def test_get_set_refuse_reset_over_http(served):
    ctl, server, run = served
    api = ControlClient(server.url, client="test")
    cfg = api.config()
    assert cfg["version"] == 1 and cfg["config"]["processors"][0]["name"] == "frames"
    assert api.status()["processed"] == 7

    v = api.set({"processors.frames.rules[0].min": 200.0})
    assert v["applied"] and v["number"] == 2 and v["kind"] == "new_segment"
    assert v["client"] == "test@127.0.0.1"
    boundary, switch = run.switches[-1]
    assert v["first_train_id"] == boundary and switch.new_segment
    assert switch.pipeline.transforms[-1].rules[0].min == 200.0
    assert api.config()["config"]["processors"][0]["rules"][0]["min"] == 200.0

    with pytest.raises(ControlError, match="rules") as e:
        api.set({"processors.frames.rules[0].min": "lots"})
    assert e.value.status == 422
    assert api.config()["version"] == 2 and len(api.versions()) == 2

    r = api.reset()
    assert r["kind"] == "reset" and r["number"] == 3 and r["segment"] == 2
    assert api.set({"run.interval": 0.5})["kind"] == "compatible"
    versions = api.versions()
    assert [v["number"] for v in versions] == [1, 2, 3, 4]
    assert versions[1]["last_train_id"] < versions[2]["first_train_id"]
    assert "config_text" not in versions[0]
    assert api.snapshot()["requested"] is True


def test_unchanged_and_whole_toml(served):
    ctl, server, _ = served
    api = ControlClient(server.url)
    assert api.set({"run.interval": 1.0})["unchanged"] is True
    v = api.replace(DSSC.replace("stepsize = 0.01", "stepsize = 0.05"))
    assert v["kind"] == "new_segment" and v["change"] == "whole config"
    assert "stepsize = 0.05" in api.config()["toml"]


def _raw(url: str, method: str, body: bytes | None, headers: dict[str, str]):
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.parametrize(
    "method, route, body, headers, code, message",
    [
        ("PATCH", "config", b"{not json", {}, 400, "not valid JSON"),
        ("PATCH", "config", b'{"sett": {}}', {}, 400, "unknown field"),
        ("PATCH", "config", b'{"set": {"processors.nope.x": 1}}', {}, 422, "no entry named"),
        ("PATCH", "config", b'{"set": {"processors.frames.pattern": 3}}', {}, 422, "pattern"),
        ("PATCH", "config", b'{"set": {"source.endpoint": "x"}}', {}, 422, "cannot change"),
        ("PATCH", "config", b"x" * (MAX_BODY + 10), {}, 413, "at most"),
        ("PATCH", "config", b"{}", {"Content-Type": "text/plain"}, 415, "Content-Type"),
        ("POST", "reset", b"", {"Content-Type": "text/plain"}, 415, "Content-Type"),
        ("GET", "nothing", None, {}, 404, "no such API route"),
        ("DELETE", "config", None, {}, 405, "Method Not Allowed"),
    ],
)
def test_bad_requests_are_refused_and_the_run_goes_on(
    served, method, route, body, headers, code, message
):
    ctl, server, run = served
    h = {"Content-Type": "application/json", **headers}
    status, answer = _raw(f"{server.url}/api/v1/{route}", method, body, h)
    assert status == code and message in answer["error"]
    assert ctl.current.number == 1 and len(ctl.log) == 1
    before = run.train_id
    assert ControlClient(server.url).config()["version"] == 1
    assert wait_for(lambda: run.train_id > before + 5, timeout=5)  # the run goes on


def test_token_is_required_when_set(tmp_path: Path):
    ctl = Controller(parse_config(DSSC))
    server = ControlServer(ctl, port=0, token="s3cret")
    server.start()
    try:
        with pytest.raises(ControlError, match="missing token") as e:
            ControlClient(server.url, token="").config()
        assert e.value.status == 401
        with pytest.raises(ControlError, match="wrong token"):
            ControlClient(server.url, token="guess").set({"run.interval": 2.0})
        assert len(ctl.log) == 1
        assert ControlClient(server.url, token="s3cret").config()["version"] == 1
    finally:
        server.stop()


def test_a_non_local_bind_always_gets_a_token():
    ctl = Controller(parse_config(DSSC))
    assert ControlServer(ctl, address="0.0.0.0").token
    assert ControlServer(ctl, address="127.0.0.1").token is None


def test_pending_when_no_train_arrives():
    ctl = Controller(parse_config(DSSC), wait=0.05)  # no run: the change stays queued
    answer = ctl.apply(Change(set={"run.interval": 2.0}))
    assert answer["applied"] is False and ctl.current.number == 1
    switch = ctl.next_switch(50)
    assert switch is not None and switch.version.number == 2 and not switch.new_segment
    assert ctl.current.first_train_id == 50


def test_replaying_switches_at_the_recorded_trains():
    live = Controller(parse_config(DSSC))
    live.apply(Change(set={"processors.frames.rules[0].min": 150.0}), wait=0)
    assert live.next_switch(10) is not None
    live.apply(Change(set={"run.interval": 2.0}), wait=0)
    live.reset(wait=0)
    assert live.next_switch(20).new_segment  # both at once: one boundary
    for t in range(20, 25):
        live.processed(t)
    log = VersionLog.from_json(live.log.to_json())
    replay = Controller.replaying(parse_config(DSSC), log)
    taken = {t: replay.next_switch(t) for t in range(5, 30)}
    assert [t for t, s in taken.items() if s] == [10, 20]
    assert taken[10].new_segment and taken[20].new_segment
    assert taken[20].config.run.interval == 2.0


def test_ctl_command(served, capsys):
    from beamstream.cli import main

    ctl, server, _ = served
    assert main(["ctl", server.url, "get"]) == 0
    assert capsys.readouterr().out.startswith("# config version 1\n")
    assert main(["ctl", server.url, "set", "processors.frames.rules[0].min=300"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("version 2 (new_segment, segment 1): applied from train")
    assert main(["ctl", server.url, "set", "processors.frames.rules[0].min=lots"]) == 1
    assert "refused (422): change: processors[0]" in capsys.readouterr().err
    assert main(["ctl", server.url, "versions"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 3 and "ctl@127.0.0.1: processors.frames.rules[0].min = 300" in table[2]
    assert main(["ctl", server.url, "reset"]) == 0
    assert "version 3 (reset, segment 2)" in capsys.readouterr().out
    assert main(["ctl", server.url, "get", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["processors"][0]["rules"][0]["min"] == 300
    assert main(["ctl", "http://127.0.0.1:1", "status"]) == 1
    assert "cannot reach" in capsys.readouterr().err
