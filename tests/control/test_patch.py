"""Config changes: dotted keys, whole TOML, located errors, safety rules, classification."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from beamstream.config import parse_config
from beamstream.control.patch import Change, ChangeError, apply_change, parse_key
from beamstream.control.validate import COMPATIBLE, NEW_SEGMENT, check_change

from .configs import DSSC


def test_parse_key_splits_names_and_indices():
    assert parse_key("processors.frames.rules[0].min") == [
        "processors",
        "frames",
        "rules",
        0,
        "min",
    ]
    assert parse_key("a[1][2].b") == ["a", 1, 2, "b"]
    for bad in ("", "a..b", "a.[0]", "a.b c", "x" * 300, "a[-1]", "__import__('os')"):
        with pytest.raises(ChangeError):
            parse_key(bad)


def test_dotted_keys_address_processors_by_name_and_index():
    text = apply_change(
        DSSC,
        Change(set={"processors.frames.rules[0].min": 200, "processors[1].dark_subtract": True}),
    )
    raw = tomllib.loads(text)
    assert raw["processors"][0]["rules"][0]["min"] == 200
    assert raw["processors"][1]["dark_subtract"] is True
    assert raw["source"] == tomllib.loads(DSSC)["source"]


def test_unset_and_whole_toml():
    text = apply_change(DSSC, Change(unset=("processors.frames.rules[0].min",)))
    assert "min" not in tomllib.loads(text)["processors"][0]["rules"][0]
    whole = DSSC.replace("min = 100.0", "min = 5.0  # kept as written")
    assert apply_change(DSSC, Change(toml=whole)) == whole


@pytest.mark.parametrize(
    "change, message",
    [
        (Change(set={"processors.nothere.x": 1}), "no entry named 'nothere'"),
        (Change(set={"processors[7].x": 1}), "index 7 beyond the 2 entries"),
        (Change(set={"run.interval.x": 1}), "cannot set 'x' in float"),
        (Change(unset=("scan.nothere",)), "nothing to unset"),
        (Change(set={"a": float("nan")}), "finite number"),
        (Change(toml="version = ["), "not valid TOML"),
    ],
)
def test_bad_changes_are_located(change, message):
    with pytest.raises(ChangeError, match=message):
        apply_change(DSSC, change)


def test_change_from_json_checks_its_fields():
    assert Change.from_json({"set": {"a": 1}}, "me").client == "me"
    for body, msg in [
        ([1], "JSON object"),
        ({"sett": {}}, "unknown field"),
        ({"set": [1]}, "object of key"),
        ({"unset": "a"}, "list of dotted keys"),
        ({"toml": 3}, "config as a string"),
        ({}, "nothing to change"),
    ]:
        with pytest.raises(ChangeError, match=msg):
            Change.from_json(body)


def _check(change: Change, roots=(), current=None):
    current = current or parse_config(DSSC, "/cfg/dssc.toml")
    return check_change(current, apply_change(current.text, change), roots)


def test_monitor_threshold_and_pattern_start_a_new_segment():
    checked = _check(Change(set={"processors.frames.rules[0].min": 200.0}))
    assert checked.kind == NEW_SEGMENT
    assert checked.pipeline.transforms[-1].rules[0].min == 200.0
    assert _check(Change(set={"processors.frames.pattern": ["a", "b"]})).kind == NEW_SEGMENT
    assert _check(Change(set={"scan.stepsize": 0.02})).kind == NEW_SEGMENT


def test_interval_and_records_only_processors_are_compatible():
    assert _check(Change(set={"run.interval": 0.5})).kind == COMPATIBLE
    roi = {"type": "roi", "name": "rois", "rois": [{"name": "a", "box": [0, 4, 0, 4]}]}
    text = apply_change(DSSC, Change(set={"processors[2]": roi}))
    # a records-only processor must come before the accumulators: insert it as a transform
    raw = tomllib.loads(text)
    raw["processors"].insert(1, raw["processors"].pop(2))
    import tomli_w

    checked = check_change(parse_config(DSSC, "/cfg/dssc.toml"), tomli_w.dumps(raw))
    assert checked.kind == COMPATIBLE


@pytest.mark.parametrize(
    "change, message",
    [
        (Change(set={"source.endpoint": "tcp://10.0.0.1:1"}), "source: cannot change"),
        (Change(set={"sinks": [{"type": "hdf5", "path": "/etc/x.h5"}]}), "sinks: cannot change"),
        (Change(set={"run.trains": 5}), "run.trains: cannot change"),
        (Change(set={"version": 2}), "version: cannot change"),
        (
            Change(set={"processors[1].type": "os:system"}),
            r"processors\[1\].type: expected a registered processor type",
        ),
        (Change(set={"processors.frames.rules[0].min": "high"}), "rules.0.min|finite number"),
        (Change(set={"processors.frames.nope": 1}), r"processors\[0\] \(frame_selector\).nope"),
        (Change(set={"processors.frames.mask": "/etc/masks/m.npz"}), "expected a file inside"),
        (Change(set={"processors.frames.mask": "../../x.npz"}), "expected a file inside"),
    ],
)
def test_refused_changes_name_the_problem(change, message):
    with pytest.raises(ChangeError, match=message) as e:
        _check(change)
    assert str(e.value).startswith("change:")


def test_files_inside_the_output_folder_are_allowed(tmp_path: Path):
    mask = tmp_path / "frames.npz"
    np.savez(mask, train_ids=np.arange(3), mask=np.ones((3, 4), bool))
    checked = _check(Change(set={"processors.frames.mask": str(mask)}), roots=[tmp_path])
    assert checked.kind == NEW_SEGMENT
    assert checked.pipeline.transforms[-1].mask is not None
