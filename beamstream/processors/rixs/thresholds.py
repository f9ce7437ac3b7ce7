"""Photon-detection thresholds: absolute ADU, k standard deviations, or from the photon energy.

One photon of energy ``E`` (eV) deposits ``E / 3.6 / 1.06`` ADU on the hRIXS cameras (3.6 eV per
electron-hole pair, 1.06 electrons per ADU), e.g. about 244 ADU at 930 eV.

``xfel`` mode (2x2 sums, 4x4 centre of mass):

* candidate threshold on the 2x2 sums: ``threshold`` (ADU), else ``mean + threshold_sigma * std``
  of the finite 2x2 sums of each frame, else ``low_fraction * photon ADU``;
* double threshold on the 4x4 sum: ``double_threshold`` (ADU), else ``double_fraction * photon
  ADU`` when the photon scale is known; without either, no hit is classified as a double (brixs's
  ``1.5 * candidate threshold`` marks nearly every photon as a double when the threshold comes
  from the noise level, so it is not used as a default).

``esrf`` mode (RixsToolBox single-photon counting) needs the photon scale (``photon_energy`` or
``photon_adu``): spot centres lie in ``(low_fraction, high_fraction) * photon ADU``; a spot is a
single when ``single_fraction * ADU <= sum < double threshold`` and a double above, with the
double threshold ``double_threshold`` or ``double_fraction * photon ADU``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from beamstream.processors.params import ParamError, positive_float

__all__ = ["EH_PAIR_EV", "ELECTRONS_PER_ADU", "photon_adu_of", "Thresholds"]

#: energy per electron-hole pair in silicon (eV)
EH_PAIR_EV = 3.6
#: electrons per ADU of the hRIXS cameras
ELECTRONS_PER_ADU = 1.06


def photon_adu_of(energy_ev: float) -> float:
    """ADU deposited by one photon of ``energy_ev`` eV: ``E / 3.6 / 1.06``."""
    return float(energy_ev) / EH_PAIR_EV / ELECTRONS_PER_ADU


def _opt_positive(key: str, value: Any) -> float | None:
    return None if value is None else positive_float(key, value)


@dataclass(frozen=True)
class Thresholds:
    """Resolved detection thresholds for one detection mode.

    Build with `Thresholds.from_params`, which validates the config keys.
    """

    mode: str
    threshold: float | None
    sigma: float | None
    adu: float | None
    low_fraction: float
    high_fraction: float
    single_fraction: float
    double_fraction: float
    double_threshold: float | None

    @classmethod
    def from_params(
        cls,
        mode: str,
        *,
        threshold: Any = None,
        threshold_sigma: Any = None,
        photon_energy: Any = None,
        photon_adu: Any = None,
        low_fraction: Any = 0.2,
        high_fraction: Any = 1.0,
        single_fraction: Any = 0.2,
        double_fraction: Any = 1.5,
        double_threshold: Any = None,
    ) -> Thresholds:
        """Validate the threshold keys of a processor config.

        Raises
        ------
        ParamError
            For non-positive or non-finite values, conflicting keys, or a missing photon scale
            in ``esrf`` mode.
        """
        thr = _opt_positive("threshold", threshold)
        sig = _opt_positive("threshold_sigma", threshold_sigma)
        energy = _opt_positive("photon_energy", photon_energy)
        adu = _opt_positive("photon_adu", photon_adu)
        dbl = _opt_positive("double_threshold", double_threshold)
        low = positive_float("low_fraction", low_fraction)
        high = positive_float("high_fraction", high_fraction)
        single = positive_float("single_fraction", single_fraction)
        double = positive_float("double_fraction", double_fraction)
        if thr is not None and sig is not None:
            raise ParamError("threshold_sigma", "either threshold or threshold_sigma", sig)
        if energy is not None and adu is not None:
            raise ParamError("photon_adu", "either photon_energy or photon_adu", adu)
        scale = adu if adu is not None else (None if energy is None else photon_adu_of(energy))
        if mode == "esrf":
            if thr is not None or sig is not None:
                key = "threshold" if thr is not None else "threshold_sigma"
                raise ParamError(
                    key,
                    "no threshold in esrf mode (it uses photon_energy or photon_adu and fractions)",
                    thr if thr is not None else sig,
                )
            if scale is None:
                raise ParamError(
                    "photon_energy", "a photon energy (or photon_adu) in esrf mode", None
                )
            if not low < high:
                raise ParamError("high_fraction", f"more than low_fraction ({low})", high)
        elif thr is None and sig is None and scale is None:
            raise ParamError(
                "threshold", "one of threshold, threshold_sigma, photon_energy, photon_adu", None
            )
        if scale is not None and dbl is None and not single < double:
            raise ParamError("double_fraction", f"more than single_fraction ({single})", double)
        return cls(mode, thr, sig, scale, low, high, single, double, dbl)

    # -- per-mode values for the kernels -----------------------------------------------------
    def xfel(self, n: int) -> tuple[np.ndarray, float, np.ndarray, float]:
        """``(thr_abs, k_sigma, dbl_abs, dbl_factor)`` for `detect_xfel` over ``n`` frames."""
        if self.threshold is not None:
            thr = self.threshold
        elif self.sigma is not None:
            thr = np.nan
        else:
            thr = self.low_fraction * self.adu
        if self.double_threshold is not None:
            dbl = self.double_threshold
        elif self.adu is not None:
            dbl = self.double_fraction * self.adu
        else:
            dbl = np.inf
        return (
            np.full(n, thr, dtype=np.float64),
            float(self.sigma or 0.0),
            np.full(n, dbl, dtype=np.float64),
            1.0,
        )

    def esrf(self) -> tuple[float, float, float, float]:
        """``(low, high, single_min, double)`` in ADU for `detect_esrf`."""
        adu = float(self.adu)
        dbl = (
            self.double_threshold
            if self.double_threshold is not None
            else self.double_fraction * adu
        )
        return self.low_fraction * adu, self.high_fraction * adu, self.single_fraction * adu, dbl

    def meta(self) -> dict[str, object]:
        """Plain values for state metadata (states with different thresholds do not merge).

        Unset values are 0.0 (every set value is positive).
        """
        return {
            "threshold": self.threshold or 0.0,
            "threshold_sigma": self.sigma or 0.0,
            "photon_adu": self.adu or 0.0,
            "fractions": (
                self.low_fraction,
                self.high_fraction,
                self.single_fraction,
                self.double_fraction,
            ),
            "double_threshold": self.double_threshold or 0.0,
        }

    def describe(self) -> str:
        """Short human-readable summary."""
        if self.mode == "esrf":
            lo, hi, s, d = self.esrf()
            return f"spot centre in ({lo:.4g}, {hi:.4g}) ADU, single >= {s:.4g}, double >= {d:.4g}"
        if self.threshold is not None:
            cand = f"2x2 sum > {self.threshold:.4g} ADU"
        elif self.sigma is not None:
            cand = f"2x2 sum > mean + {self.sigma:g} std"
        else:
            cand = f"2x2 sum > {self.low_fraction * self.adu:.4g} ADU"
        return cand
