"""Deterministic detector simulators with known ground truth (see docs/simulator.md).

* `SaxsSimulator`: 1 Mpix flat detector, powder rings at known q (pyFAI geometry), optional raster
  scan over an anisotropic sample;
* `DsscSimulator`: one DSSC module in a pump-probe delay scan, with frame pattern and XGM;
* `RixsSimulator`: hRIXS camera with single photons along a curved, energy-dispersed line.

Every train is a function of ``(seed, train_id)`` only; ``.truth`` and ``.train_truth(train_id)``
give the answers a processor must find. `simulate` streams them with a `Sender`.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> submodule; imported on first use (PEP 562), so that importing the package (the
#: ``beamstream`` CLI does, for ``simulate --help``) does not load numba
_EXPORTS = {
    "EPOCH": "_common",
    "FIRST_TRAIN_ID": "_common",
    "TRAIN_PERIOD": "_common",
    "SimulatedDetector": "_common",
    "source_metadata": "_common",
    "SaxsSimulator": "saxs",
    "SaxsTruth": "saxs",
    "Ring": "saxs",
    "RasterScan": "saxs",
    "Geometry": "geometry",
    "write_poni": "geometry",
    "DsscSimulator": "dssc",
    "DsscTruth": "dssc",
    "PumpProbeSignal": "dssc",
    "xgm_frame_indices": "dssc",
    "RixsSimulator": "rixs",
    "RixsTruth": "rixs",
    "EmissionLine": "rixs",
    "adu_per_photon": "rixs",
    "SIMULATORS": "serve",
    "make_simulator": "serve",
    "simulate": "serve",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
