"""Results of the q-phi integrator: intensities, errors, counts, pumped - unpumped."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..base import Result
from ..state import BinnedState
from .bintable import Grid

__all__ = ["build_results", "UNIT_LABEL"]

UNIT_LABEL = {"q_nm^-1": "1/nm", "q_A^-1": "1/A"}


def build_results(
    state: BinnedState,
    grid: Grid,
    slots: Sequence[str],
    outputs: Sequence[str],
    with_sigma: bool,
    attrs: dict[str, Any],
) -> dict[str, Result]:
    """``I_qphi``, ``sigma_qphi``, ``count_qphi``, ``I_q``, ... from the summed state.

    ``I = sum_signal / sum_norm`` and ``sigma = sqrt(sum_var) / sum_norm`` (NaN where the count is
    0); ``dI_*`` = pumped - unpumped when both slots exist.
    """
    out: dict[str, Result] = {}
    slot_names = np.array(list(slots))
    qlab = UNIT_LABEL[grid.unit]
    phic = np.degrees(grid.phi.centers())
    for dim, o in ((2, "iqphi"), (1, "iq")):
        if o not in outputs:
            continue
        sfx = "" if dim == 2 else "_1d"
        tag = "qphi" if dim == 2 else "q"
        dims = ("scan", "slot", "phi", "q") if dim == 2 else ("scan", "slot", "q")
        coords = {"scan": state.keys.copy(), "slot": slot_names}
        if dim == 2:
            coords["phi"] = phic
            coords["q"] = grid.q.centers()
        else:
            coords["q"] = grid.q1d.centers()
        cu = {"q": qlab, "phi": "deg"} if dim == 2 else {"q": qlab}
        S, W, C = state["sum_signal" + sfx], state["sum_norm" + sfx], state["count" + sfx]
        with np.errstate(invalid="ignore", divide="ignore"):
            inten = np.where(C > 0, S / W, np.nan)
        # the 1-D and 2-D q grids differ: "grid" names the 1-D one apart where both are shown
        attrs_d = {**attrs, "grid": "1d"} if dim == 1 else dict(attrs)
        i_attrs = {**attrs_d, "errors": f"sigma_{tag}"} if with_sigma else attrs_d
        out[f"I_{tag}"] = Result(f"I_{tag}", inten, dims, coords, "", cu, i_attrs)
        out[f"count_{tag}"] = Result(
            f"count_{tag}", C.copy(), dims, coords, "pixels", cu, dict(attrs_d)
        )
        if with_sigma:
            with np.errstate(invalid="ignore", divide="ignore"):
                sig = np.where(C > 0, np.sqrt(state["sum_var" + sfx]) / W, np.nan)
            out[f"sigma_{tag}"] = Result(f"sigma_{tag}", sig, dims, coords, "", cu, dict(attrs_d))
        if "pumped" in slots and "unpumped" in slots:
            ip, iu = list(slots).index("pumped"), list(slots).index("unpumped")
            dc = {k: v for k, v in coords.items() if k != "slot"}
            ddims = tuple(d for d in dims if d != "slot")
            out[f"dI_{tag}"] = Result(
                f"dI_{tag}",
                inten[:, ip] - inten[:, iu],
                ddims,
                dc,
                "",
                cu,
                {**attrs_d, "difference": "pumped - unpumped"},
            )
    return out
