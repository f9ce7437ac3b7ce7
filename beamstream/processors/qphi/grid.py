"""The output grid of the q-phi integrator, from the configured ranges and the valid pixels.

The q range defaults to the min and max q of the pixels that no static mask, dummy or
correction excludes, over all detectors (clipped at 0); a given range must contain pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..params import ParamError, float_range
from .bintable import Axis, Grid, static_valid
from .detectors import Detector
from .results import UNIT_LABEL

__all__ = ["build_grid"]


def build_grid(
    detectors: Sequence[Detector],
    q_range: Any,
    phi_range: Any,
    *,
    npt_q: int,
    npt_phi: int,
    npt_q_1d: int,
    unit: str,
    azimuth: str,
    polarization: tuple[float, float] | None,
    dummy: tuple[float, float] | None,
    solid_angle: bool,
) -> Grid:
    """The (phi, q) and 1-D q axes of the integrator.

    Parameters
    ----------
    detectors
        The configured detectors; their valid pixels bound the default q range.
    q_range
        ``[lo, hi]`` in ``unit``, or None for the range of the valid pixels.
    phi_range
        ``[lo, hi]`` in degrees within [-360, 360].
    npt_q, npt_phi, npt_q_1d
        Bins of the 2-D q, azimuth and 1-D q axes.
    unit, azimuth
        Canonical radial unit and azimuth convention (``"chi"`` or ``"phi"``).
    polarization, dummy, solid_angle
        Corrections, as in `static_valid`, deciding which pixels are valid.

    Returns
    -------
    Grid
        The common grid (azimuth axis in radians).

    Raises
    ------
    ParamError
        A range outside its limits, every pixel masked, or a q range containing no pixel.
    """
    plo, phi_hi = float_range("phi_range", phi_range)
    if plo < -360 or phi_hi > 360:
        raise ParamError("phi_range", "degrees within [-360, 360]", phi_range)
    phi_axis = Axis(math.radians(plo), math.radians(phi_hi), npt_phi)
    valid_q = []
    for d in detectors:
        valid, _ = static_valid(d.inputs, polarization, dummy, solid_angle)
        valid_q.append(d.inputs.geometry.arrays().q(unit).ravel()[valid])
    allq = np.concatenate(valid_q)
    if allq.size == 0:
        raise ParamError("mask", "at least one unmasked pixel", "every pixel masked")
    if q_range is None:
        lo, hi = float(allq.min()), float(allq.max())
        lo = max(lo, 0.0)
        if not lo < hi:
            raise ParamError("q_range", "pixels spanning a q range", (lo, hi))
    else:
        lo, hi = float_range("q_range", q_range)
        if not np.any((allq >= lo) & (allq <= hi)):
            raise ParamError(
                "q_range",
                f"a range containing pixels (they cover {allq.min():.6g}..{allq.max():.6g} "
                f"{UNIT_LABEL[unit]})",
                list(q_range),
            )
    return Grid(
        q=Axis(lo, hi, npt_q),
        phi=phi_axis,
        q1d=Axis(lo, hi, npt_q_1d),
        unit=unit,
        azimuth=azimuth,
    )
