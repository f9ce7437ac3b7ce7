"""beamstream: live processing of X-ray detector streams.

The package is organised as DESIGN.md describes: ``streamer`` (wire protocol, receiver, sender,
simulator), ``processors`` (pipeline, transforms, mergeable accumulators), ``sinks`` (hub, HDF5,
dashboard) and ``replay`` (archived data streamed as if live).
"""

import os
from importlib.metadata import PackageNotFoundError, version

# numba's OpenMP threads spin between parallel calls by default; on a shared beamline machine that
# steals the cores processing needs. Passive waiting (unless the user chose otherwise).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    __version__ = version("beamstream")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
