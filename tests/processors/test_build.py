"""Building a pipeline: the frame pattern, declared requirements, config-relative paths."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import h5py
import numpy as np

from beamstream.cli import main
from beamstream.config import load_config, parse_config
from beamstream.processors.pipeline import Pipeline
from beamstream.simulate import write_poni
from beamstream.simulate.geometry import Geometry

HEAD = """
version = 1
[source]
detector = "DET/0:xtdf"
key = "image.data"
layout = ["frame", "y", "x"]
"""
PATTERN_USER = (
    HEAD
    + """
[[processors]]
type = "tests.processors.userplugin:PatternNamedTransform"
[[processors]]
type = "scan_binner"
"""
)


def test_a_transform_with_a_pattern_attribute_does_not_change_the_slots():
    p = Pipeline(parse_config(PATTERN_USER, "t.toml"))
    assert p.slots == ("image",)
    assert p.accumulators[0].slots == ("image",)


def test_the_frame_selector_declares_the_slots():
    text = PATTERN_USER.replace(
        '[[processors]]\ntype = "scan_binner"',
        '[[processors]]\ntype = "frame_selector"\npattern = ["on", "off"]\n'
        '[[processors]]\ntype = "scan_binner"',
    )
    p = Pipeline(parse_config(text, "t.toml"))
    assert p.slots == ("on", "off") and p.accumulators[0].slots == ("on", "off")


def test_check_refuses_a_requirement_nobody_provides(tmp_path, capsys):
    cfg = tmp_path / "needy.toml"
    cfg.write_text(
        HEAD + '[[processors]]\ntype = "tests.processors.userplugin:NeedsProduct"\nname = "fit"\n'
    )
    assert main(["check", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "'fit' requires 'qphi.iq'; no processor provides it" in err
    assert "processors[0]" in err


def test_nested_relative_paths_resolve_against_the_config_folder(tmp_path, monkeypatch):
    folder = tmp_path / "beamline"
    folder.mkdir()
    geom = Geometry()
    write_poni(folder / "det.poni", geom)
    shape = geom.shape
    mask = np.zeros(shape, bool)
    mask[:5] = True
    with h5py.File(folder / "m.h5", "w") as f:
        f["entry/mask"] = mask
    (folder / "cfg.toml").write_text(
        HEAD
        + textwrap.dedent(
            """
            [[processors]]
            type = "qphi"
            npt_q = 20
            npt_phi = 8
            mask = "m.h5:/entry/mask"
            [processors.geometry]
            poni = "det.poni"
            """
        )
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    qphi = Pipeline(load_config("../beamline/cfg.toml")).accumulators[0]
    inputs = qphi.detectors[0].inputs
    np.testing.assert_array_equal(inputs.mask, mask)
    assert inputs.geometry.shape == shape
    # the same names relative to the working directory are not looked at
    (elsewhere / "det.poni").write_text("garbage\n")
    assert Pipeline(load_config("../beamline/cfg.toml")).accumulators[0].detectors


def test_a_module_beside_the_config_loads_without_pythonpath(tmp_path, subprocess_env):
    folder = tmp_path / "cfgdir"
    folder.mkdir()
    (folder / "beside_plugin_mod.py").write_text(
        textwrap.dedent(
            """
            from beamstream.processors.base import Transform

            class Marker(Transform):
                def __call__(self, view):
                    return view

                def describe(self):
                    return "Marker from beside the config"
            """
        )
    )
    (folder / "c.toml").write_text(
        HEAD + '[[processors]]\ntype = "beside_plugin_mod:Marker"\n'
        '[[processors]]\ntype = "scan_binner"\n'
    )
    env = {k: v for k, v in subprocess_env.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-m", "beamstream", "check", str(folder / "c.toml")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "Marker from beside the config" in out.stdout
