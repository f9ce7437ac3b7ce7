"""`beamstream reprocess --workers 2`: Dask's INFO logs stay quiet, its dashboard link is printed
once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from beamstream.formats.raw import RawWriter
from beamstream.simulate import DsscSimulator

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(180)
def test_reprocess_on_workers_prints_the_dask_link_once(tmp_path, subprocess_env):
    raw = tmp_path / "raw.h5"
    writer = RawWriter(raw)
    writer.write(DsscSimulator(seed=2, frames=4).trains(12))
    writer.close()
    cmd = [sys.executable, "-m", "beamstream", "reprocess", str(ROOT / "config" / "minimal.toml"),
           str(raw), "--workers", "2", "--trains-per-chunk", "4", "-q"]  # fmt: skip
    env = subprocess_env
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=150, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert "processed 12 trains" in done.stdout
    err = done.stderr
    assert err.count("Dask dashboard: http://") == 1, err
    assert "INFO" not in err and "distributed.scheduler" not in err, err
    assert len(err.strip().splitlines()) <= 3, err
