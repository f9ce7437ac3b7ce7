"""A raw multi-module AGIPD run written with extra-data's mock writers, filled with known counts."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

AGIPD = "SPB_DET_AGIPD1M-1/DET"
XGM = "SA1_XTD2_XGM/XGM/DOOCS"


def write_agipd_run(run: Path, modules: int = 16, ntrains: int = 3, frames: int = 4) -> Path:
    """``run`` (created) with ``modules`` raw AGIPD module files (``(frames, 2, 512, 128)``
    uint16, random counts in the data plane) and an XGM file; returns ``run``."""
    from extra_data.tests.mockdata import write_file
    from extra_data.tests.mockdata.detectors import AGIPDModule
    from extra_data.tests.mockdata.xgm import XGM as MockXGM

    run.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2)
    for m in range(modules):
        path = run / f"RAW-R0001-AGIPD{m:02d}-S00000.h5"
        write_file(
            str(path),
            [AGIPDModule(f"{AGIPD}/{m}CH0", frames_per_train=frames)],
            ntrains=ntrains,
            chunksize=ntrains,
        )
        with h5py.File(path, "r+") as f:
            ds = f[f"INSTRUMENT/{AGIPD}/{m}CH0:xtdf/image/data"]
            ds[...] = rng.integers(0, 4000, ds.shape, dtype=np.uint16)
    write_file(str(run / "RAW-R0001-DA01-S00000.h5"), [MockXGM(XGM)], ntrains=ntrains)
    return run
