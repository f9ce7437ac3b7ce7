"""q-phi integration: 2-D (phi, q) cakes and 1-D I(q), incremental and exact against pyFAI.

Modules: `geometry` (pyFAI-compatible per-pixel q, chi, solid angle, polarization), `poni` (PONI
files), `inputs` (mask/dark/flat loading), `bintable` (bins and cached pixel -> bin tables),
`_kernels` (numba scatter-add), `detectors` (detector config), `results` (finalized results),
`integrator` (the `QPhiIntegrator` accumulator).
"""

from .geometry import DetectorGeometry
from .integrator import QPhiIntegrator

__all__ = ["DetectorGeometry", "QPhiIntegrator"]
