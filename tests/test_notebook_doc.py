"""The worked example of docs/notebook.md runs as written."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(300)
def test_notebook_example_runs(tmp_path, monkeypatch):
    pytest.importorskip("xarray")
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs/notebook.md").read_text(), re.S)
    assert len(blocks) == 5
    shutil.copytree(ROOT / "config", tmp_path / "config")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "docs/notebook.md", "exec"), namespace)
    assert namespace["status"]["processed"] == 8
    assert namespace["iq"].dims == ("scan", "slot", "q")
    qphi = namespace["qphi"]
    assert qphi["I_q"].dims == ("scan", "slot", "q_1d") and qphi.sizes["q_1d"] == 1000
    assert namespace["per_frame"].shape == (2, 1000)
    assert (tmp_path / "saxs.png").stat().st_size > 10_000
    assert (tmp_path / "saxs.cansas.h5").exists()
    import matplotlib.pyplot as plt

    plt.close("all")
