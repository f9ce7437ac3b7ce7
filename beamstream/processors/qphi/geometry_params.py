"""Validation of `DetectorGeometry` constructor arguments, with readable ValueError messages.

Every message names the ``geometry.<key>`` at fault, what was expected and what was found.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .units import HC_KEV_A

__all__ = ["as_number", "flat_shape", "wavelength_m"]


def as_number(name: str, v: Any) -> float:
    """``v`` as a float; ValueError naming ``geometry.{name}`` unless it is a (non-bool) number."""
    if isinstance(v, bool) or not isinstance(v, int | float | np.floating | np.integer):
        raise ValueError(f"geometry.{name}: expected a number, got {v!r}")
    return float(v)


def flat_shape(shape: Any) -> tuple[int, ...]:
    """``(rows, columns)`` of a flat detector from a sequence of two integers."""
    try:
        out = tuple(int(s) for s in shape)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"geometry.shape: expected a list of integers, got {shape!r}") from exc
    if len(out) != 2:
        raise ValueError(
            f"geometry.shape: expected (rows, columns) of a flat detector, got {shape!r}"
        )
    return out


def wavelength_m(wavelength: float | None, energy: float | None) -> float:
    """The wavelength [m] from exactly one of ``wavelength`` [m] or ``energy`` [keV]."""
    if wavelength is not None and energy is not None:
        raise ValueError("geometry: give either wavelength [m] or energy [keV], not both")
    if wavelength is not None:
        wl = as_number("wavelength", wavelength)
    elif energy is not None:
        e = as_number("energy", energy)
        if e <= 0:
            raise ValueError(f"geometry.energy: expected > 0 keV, got {energy!r}")
        wl = HC_KEV_A / e * 1e-10
    else:
        raise ValueError("geometry: missing wavelength (metres) or energy (keV)")
    if wl <= 0:
        raise ValueError(f"geometry.wavelength: expected > 0 metres, got {wavelength!r}")
    return wl
