"""A raw multi-module AGIPD run written with extra-data's mock writers, filled with known counts."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

AGIPD = "SPB_DET_AGIPD1M-1/DET"
AGIPD_CORR = "SPB_DET_AGIPD1M-1/CORR"
XGM = "SA1_XTD2_XGM/XGM/DOOCS"


def write_agipd_run(
    run: Path, modules: int = 16, ntrains: int = 3, frames: int = 4, corrected: bool = False
) -> Path:
    """``run`` (created) with ``modules`` raw AGIPD module files (``(frames, 2, 512, 128)``
    uint16, random counts in the data plane) and an XGM file; returns ``run``.

    ``corrected``: corrected files instead, as since 2026 (``.../CORR/<m>CH0:output``,
    float32 ``(frames, 512, 128)``)."""
    from extra_data.tests.mockdata import write_file
    from extra_data.tests.mockdata.detectors import AGIPDModule
    from extra_data.tests.mockdata.xgm import XGM as MockXGM

    run.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2)
    for m in range(modules):
        kind = "CORR" if corrected else "RAW"
        path = run / f"{kind}-R0001-AGIPD{m:02d}-S00000.h5"
        if corrected:
            device, channel = f"{AGIPD_CORR}/{m}CH0", "output"
            module = AGIPDModule(device, frames, raw=False, channel_name=channel)
        else:
            device, channel = f"{AGIPD}/{m}CH0", "xtdf"
            module = AGIPDModule(device, frames_per_train=frames)
        write_file(str(path), [module], ntrains=ntrains, chunksize=ntrains)
        with h5py.File(path, "r+") as f:
            ds = f[f"INSTRUMENT/{device}:{channel}/image/data"]
            ds[...] = rng.integers(0, 4000, ds.shape).astype(ds.dtype)
    write_file(str(run / "RAW-R0001-DA01-S00000.h5"), [MockXGM(XGM)], ntrains=ntrains)
    return run
