"""Physical constants and radial units of the q-phi integration.

``q`` is computed in 1/m; `q_scale` converts it to the accepted output units (``"q_nm^-1"``,
``"q_A^-1"``), whose spellings `UNITS` normalizes.
"""

from __future__ import annotations

__all__ = ["HC_KEV_A", "UNITS", "q_scale"]

#: h*c in keV * Angstrom (lambda[A] = HC_KEV_A / E[keV])
HC_KEV_A = 12.398419843320026

#: accepted radial unit spellings -> canonical name
UNITS = {
    "q_nm^-1": "q_nm^-1",
    "nm^-1": "q_nm^-1",
    "1/nm": "q_nm^-1",
    "q_A^-1": "q_A^-1",
    "A^-1": "q_A^-1",
    "1/A": "q_A^-1",
}


def q_scale(unit: str) -> float:
    """Factor from q in 1/m to q in ``unit`` ('q_nm^-1' or 'q_A^-1')."""
    return {"q_nm^-1": 1e-9, "q_A^-1": 1e-10}[UNITS[unit]]
