"""Fused passes: accumulators that read the same frames share one pass over them.

A megapixel train is hundreds of MB; reading it once per accumulator costs more than the work
done per value. `plan_steps` pairs a `ScanBinner` (exact mode) with a `QPhiIntegrator` that
integrates ``view.frames`` into a 1-D I(q) (no pixel splitting, no dark, no dummy value) into one
`FusedBinnerQ` step, whose kernel reads every frame once and updates both states as each would
(the binner's sums bit for bit; the q sums up to the order of floating-point additions). Trains
the fused kernel does not take (integer frames, ...) go through the two accumulators in turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numba
import numpy as np

from beamstream.processors import _fused_kernels as kernels
from beamstream.processors.base import Accumulator, TrainView
from beamstream.processors.binner import ScanBinner
from beamstream.processors.qphi.integrator import QPhiIntegrator
from beamstream.processors.qphi.scatter import frame_slots

__all__ = ["FusedBinnerQ", "plan_steps"]


class FusedBinnerQ:
    """A `ScanBinner` and a 1-D `QPhiIntegrator` updated by one pass over the frames."""

    def __init__(self, binner: ScanBinner, qphi: QPhiIntegrator):
        self.binner = binner
        self.qphi = qphi
        self.names = (binner.name, qphi.name)
        self._bins: tuple | None = None  # (npix, table, per-pixel bins, norm)

    @staticmethod
    def fits(binner: Accumulator, qphi: Accumulator) -> bool:
        """Whether the pair can be fused (decided once, from the configuration)."""
        return (
            isinstance(binner, ScanBinner)
            and isinstance(qphi, QPhiIntegrator)
            and binner.mode == "exact"
            and tuple(qphi.outputs) == ("iq",)
            and qphi.per_frame in ("none", "iq")
            and qphi.split == "no"
            and qphi.dummy is None
            and len(qphi.detectors) == 1
            and qphi.detectors[0].source is None
            and qphi.detectors[0].inputs.dark is None
            and tuple(qphi.slots) == tuple(binner.slots)
        )

    def update(self, states: dict[str, Any], view: TrainView) -> None:
        frames = view.frames
        if frames is None or frames.dtype not in (np.float32, np.float64) or frames.ndim < 2:
            self._separately(states, view)
            return
        b_state, q_state = states[self.binner.name], states[self.qphi.name]
        prepared = self.binner.prepare(b_state, view)
        if prepared is None:  # nothing accepted: the integrator still counts the train
            self.qphi.update(q_state, view)
            return
        row, slot, flat, _ = prepared
        flat = np.ascontiguousarray(flat)
        nf, npix = flat.shape
        table = self.qphi.table(0, 1)
        if table.pix.size and int(table.pix[-1]) >= npix:
            self._separately(states, view)  # the integrator raises its shape error
            return
        ns = len(self.binner.slots)
        qslot = frame_slots(self.qphi.name, view, nf, self.qphi.slots)
        per_frame = self.qphi.per_frame == "iq"
        dest = np.where(qslot >= 0, np.arange(nf) if per_frame else qslot, -1).astype(np.int64)
        nrows = nf if per_frame else ns
        nper = np.bincount(slot[slot >= 0], minlength=ns).astype(np.int64)
        bins, norm = self._dense_bins(table, npix)
        nchunks = max(1, min(numba.get_num_threads(), npix // kernels.BLOCK))
        # interleaved lanes of partial sums, and a column for the pixels not integrated
        shape = (nchunks, nrows, kernels.LANES, table.nbins + 1)
        with_var = self.qphi.error_model == "poisson"
        S, Wc, Cc = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        V = np.zeros(shape) if with_var else np.zeros((nchunks, 1, 1, 1))
        kernels.bin_and_scatter(
            flat,
            slot,
            dest,
            nper,
            b_state["sum"][row].reshape(ns, -1),
            b_state["pixel_count"][row].reshape(ns, -1),
            bins,
            norm,
            with_var,
            S,
            V,
            Wc,
            Cc,
        )
        b_state["count"][row] += nper
        b_state["trains"][row] += 1
        nb = table.nbins
        sums = (
            S.sum(axis=(0, 2))[:, :nb],
            Wc.sum(axis=(0, 2))[:, :nb],
            Cc.sum(axis=(0, 2))[:, :nb],
            V.sum(axis=(0, 2))[:, :nb] if with_var else None,
        )
        self.qphi.update_with(q_state, view, sums)

    def _dense_bins(self, table: Any, npix: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-pixel bins and normalization (built once per table and frame size)."""
        if self._bins is None or self._bins[0] != npix or self._bins[1] is not table:
            bins, norm = kernels.dense_bins(table.pix, table.idx, table.norm, npix, table.nbins)
            self._bins = (npix, table, bins, norm)
        return self._bins[2], self._bins[3]

    def _separately(self, states: dict[str, Any], view: TrainView) -> None:
        self.binner.update(states[self.binner.name], view)
        self.qphi.update(states[self.qphi.name], view)


class _Single:
    """One accumulator as a step."""

    def __init__(self, acc: Accumulator):
        self.acc = acc

    def update(self, states: dict[str, Any], view: TrainView) -> None:
        self.acc.update(states[self.acc.name], view)


def plan_steps(accumulators: Sequence[Accumulator], fuse: bool = True) -> list:
    """The accumulators as update steps, fusing the first binner/q-phi pair that fits."""
    accs = list(accumulators)
    if fuse:
        for i, a in enumerate(accs):
            for j, b in enumerate(accs):
                if i != j and FusedBinnerQ.fits(a, b):
                    first, second = sorted((i, j))
                    steps: list = [_Single(x) for x in accs[:first]]
                    steps.append(FusedBinnerQ(a, b))
                    rest = [x for k, x in enumerate(accs) if k > first and k != second]
                    return steps + [_Single(x) for x in rest]
    return [_Single(a) for a in accs]
