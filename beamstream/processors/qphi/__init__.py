"""q-phi integration: 2-D (phi, q) cakes and 1-D I(q), incremental and exact against pyFAI.

Modules: `geometry` (`DetectorGeometry`: pyFAI-compatible detector description), `pixels`
(per-pixel formulas: coordinates, rotations, q, chi, solid angle, polarization),
`geometry_params` (geometry argument validation), `units` (constants, radial units), `poni`
(PONI files), `inputs` (mask/dark/flat loading), `bintable` (bins and cached pixel -> bin
tables), `grid` (the output grid from the configured ranges), `_kernels` (numba scatter-add),
`scatter` (per-train frames and sums over all detectors), `detectors` (detector config),
`results` (finalized results), `integrator` (the `QPhiIntegrator` accumulator).
"""

from .geometry import DetectorGeometry
from .integrator import QPhiIntegrator

__all__ = ["DetectorGeometry", "QPhiIntegrator"]
