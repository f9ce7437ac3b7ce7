"""hRIXS-style RIXS processing: single-photon centroiding and high-flux energy integration.

* `PhotonCentroider` finds single photons (``xfel`` or ``esrf`` mode), corrects the line
  curvature and histograms the photons into energy bins; double hits count twice.
* `EnergyIntegrator` distributes every pixel's intensity over the energy bins it overlaps.
* `fit_curvature` / `fit_curvature_hits` fit the curvature ``y' = y - (a*x + b*x**2)``; the
  ``fit-curvature`` CLI subcommand lives in `beamstream.processors.rixs.cli`.

See ``docs/rixs.md``.
"""

from beamstream.processors.rixs.centroider import PhotonCentroider
from beamstream.processors.rixs.curvature import CurvatureFit, fit_curvature, fit_curvature_hits
from beamstream.processors.rixs.integrator import EnergyIntegrator
from beamstream.processors.rixs.thresholds import photon_adu_of

__all__ = [
    "PhotonCentroider",
    "EnergyIntegrator",
    "CurvatureFit",
    "fit_curvature",
    "fit_curvature_hits",
    "photon_adu_of",
]
