"""beamstream: live processing of X-ray detector streams.

The package is organised as DESIGN.md describes: ``streamer`` (wire protocol, receiver, sender,
simulator), ``processors`` (pipeline, transforms, mergeable accumulators), ``sinks`` (hub, HDF5,
dashboard) and ``replay`` (archived data streamed as if live).
"""

import os
import time
from importlib.metadata import PackageNotFoundError, version

#: when the package was first imported (close to the start of a `beamstream` command)
IMPORTED_AT = time.time()

# numba's OpenMP threads spin between parallel calls by default; on a shared beamline machine that
# steals the cores processing needs. Passive waiting (unless the user chose otherwise).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _default_cache_dir() -> None:
    """numba caches compiled kernels in a user cache directory unless told otherwise.

    (Next to the sources is not writable for a system-wide install; a user cache always is.)
    """
    if "NUMBA_CACHE_DIR" in os.environ:
        return
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(base, "beamstream", "numba")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return  # numba falls back to its own choice
    if os.access(path, os.W_OK):
        os.environ["NUMBA_CACHE_DIR"] = path


_default_cache_dir()

try:
    __version__ = version("beamstream")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
