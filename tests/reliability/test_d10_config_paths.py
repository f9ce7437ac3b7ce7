"""Defect 10: a relative file name in a config means the file beside the config, even when the
current directory holds a file of the same name."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from beamstream.config import load_config
from beamstream.processors.pipeline import Pipeline

CONFIG = """
version = 1
[source]
detector = "DET"
layout = ["frame", "y", "x"]
[[processors]]
type = "frame_selector"
pattern = ["a", "b"]
mask = "frames.npz"
"""


def _mask(path: Path, train_id: int) -> None:
    np.savez(path, train_ids=np.array([train_id]), mask=np.ones((1, 2), bool))


def test_file_beside_the_config_wins_over_the_current_directory(tmp_path: Path, monkeypatch):
    cfgdir, cwd = tmp_path / "cfg", tmp_path / "work"
    cfgdir.mkdir()
    cwd.mkdir()
    (cfgdir / "p.toml").write_text(CONFIG)
    _mask(cfgdir / "frames.npz", 111)
    _mask(cwd / "frames.npz", 222)  # the shadow
    monkeypatch.chdir(cwd)
    pipe = Pipeline(load_config(cfgdir / "p.toml"))
    selector = next(t for t in pipe.transforms if hasattr(t, "mask"))
    assert selector.mask.path == cfgdir / "frames.npz"
    assert list(selector.mask.rows) == [111]
