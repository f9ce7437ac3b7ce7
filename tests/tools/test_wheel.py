"""A wheel built from the repository, installed into a fresh virtual environment with its runtime
dependencies only, runs ``beamstream demo`` (example configs shipped as package data)."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = {"pyzmq", "msgpack", "numpy", "numba", "h5py", "bokeh"}
TEST_ONLY = {"pytest", "pyfai", "extra-geom", "selenium", "distributed", "karabo-bridge"}


def _run(cmd: list[str], timeout: float, **kw: object) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kw)


@pytest.mark.wheel
@pytest.mark.timeout(600)
def test_wheel_in_a_fresh_venv_runs_the_demo(tmp_path):
    dist = tmp_path / "dist"
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(dist), str(ROOT)],
        timeout=180,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("beamstream-*.whl")
    env_dir = tmp_path / "env"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    # pip's cache and the configured indexes make this an install of cached wheels
    installed = _run([str(py), "-m", "pip", "install", "-q", str(wheel)], timeout=400)
    assert installed.returncode == 0, installed.stderr
    names = _run([str(py), "-m", "pip", "list", "--format=freeze"], timeout=60).stdout.lower()
    have = {line.split("==")[0] for line in names.splitlines()}
    assert RUNTIME <= have, RUNTIME - have
    assert not (TEST_ONLY & have), TEST_ONLY & have

    # run from elsewhere than the checkout, with a cache of its own: nothing found via the repo
    work = tmp_path / "work"
    work.mkdir()
    env = {"PATH": f"{env_dir / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}  # fmt: skip
    demo = _run(
        [str(env_dir / "bin" / "beamstream"), "demo", "--duration", "10", "--port", "0",
         "--output-dir", str(work / "out")],
        timeout=300, cwd=work, env=env,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stdout + demo.stderr
    out = demo.stdout
    for name in ("dssc", "saxs", "rixs"):
        assert (work / "out" / f"{name}.h5").stat().st_size > 0
        line = next(
            x for x in out.splitlines() if x.strip().startswith(f"{name} ") and "trains," in x
        )
        assert int(line.split()[1]) > 0, line
    assert "dashboard http://" in out
