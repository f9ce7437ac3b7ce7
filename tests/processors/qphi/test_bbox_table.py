"""The bounding-box splitting table (numba kernels) against a plain numpy formulation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from beamstream.processors.qphi.bintable import Axis, _bbox_csc
from beamstream.processors.qphi.geometry import DetectorGeometry
from beamstream.processors.qphi.pixels import q_scale


def _spread(fmin, fmax, npt):
    """Per pixel, (bin, fraction) columns of [fmin, fmax] in bin units, edges clipped."""
    c0 = np.clip(np.floor(fmin).astype(np.int64), 0, npt - 1)
    c1 = np.clip(np.floor(fmax).astype(np.int64), 0, npt - 1)
    span = fmax - fmin
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(span > 0, 1.0 / span, 0.0)
    out = []
    for off in range(int((c1 - c0).max()) + 1):
        b = c0 + off
        frac = np.where(b == c0, (c0 + 1) - fmin, np.where(b == c1, fmax - c1, 1.0)) * inv
        frac = np.where(c0 == c1, np.where(off == 0, 1.0, 0.0), frac)
        out.append((b, np.where(b <= c1, frac, 0.0)))
    return out


def reference(valid, q, dq, phi, dphi, qa, pa, dim):
    fq0, fq1 = qa.fbin(q - dq), qa.fbin(q + dq)
    keep = valid & (fq1 >= 0) & (fq0 < qa.npt)
    fp0, fp1 = pa.fbin(phi - dphi), pa.fbin(phi + dphi)
    if dim == 2:
        keep &= (fp1 >= 0) & (fp0 < pa.npt)
    else:
        keep &= (phi + dphi >= pa.lo) & (phi - dphi <= pa.hi)
    pix = np.flatnonzero(keep)
    qs = _spread(fq0[pix], fq1[pix], qa.npt)
    if dim == 2:
        ps = _spread(fp0[pix], fp1[pix], pa.npt)
        cols = [(bp * qa.npt + bq, fp * fq) for bp, fp in ps for bq, fq in qs]
    else:
        cols = qs
    b = np.stack([c[0] for c in cols], axis=1)
    f = np.stack([c[1] for c in cols], axis=1)
    nz = f > 0
    ptr = np.zeros(len(pix) + 1, dtype=np.int64)
    np.cumsum(nz.sum(axis=1), out=ptr[1:])
    return pix.astype(np.int32), ptr, b[nz].astype(np.int32), f[nz]


@pytest.mark.parametrize("dim", [1, 2])
def test_bbox_table_equals_the_numpy_formulation(dim):
    rng = np.random.default_rng(1)
    n = 20_000
    q = rng.uniform(0.0, 30.0, n)  # some below and above the q range: clipped or dropped
    dq = rng.uniform(0.0, 0.3, n)
    phi = rng.uniform(-180.0, 180.0, n)
    dphi = rng.uniform(0.0, 5.0, n)
    dphi[:50] = 40.0  # pixels near the beam centre span many azimuthal bins
    dq[50:60] = 0.0  # zero-width boxes: one bin, fraction 1
    valid = rng.random(n) > 0.05
    qa, pa = Axis(0.5, 25.0, 200), Axis(-180.0, 180.0, 72)
    got = _bbox_csc(valid, q, dq, phi, dphi, qa, pa, dim)
    want = reference(valid, q, dq, phi, dphi, qa, pa, dim)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)
    # every kept pixel's coefficients sum to 1 unless it is clipped at an edge
    ptr, coef = got[1], got[3]
    sums = np.add.reduceat(coef, ptr[:-1])
    assert np.median(sums) == pytest.approx(1.0)


def test_corner_deltas_match_the_array_formulation():
    geo = DetectorGeometry.from_config(
        dict(dist=0.2, poni1=0.00305, poni2=0.00405, rot1=0.01, rot2=-0.02, rot3=0.03, pixel1=1e-4,
             pixel2=1e-4, wavelength=1e-10, shape=[60, 80])
    )  # fmt: skip
    dq, dchi = geo.deltas("q_nm^-1")
    tth_c, chi_c = geo.angles(corners=True)
    arr = geo.arrays()
    q_c = 4.0 * math.pi * np.sin(0.5 * tth_c) / geo.wavelength * q_scale("q_nm^-1")
    dq0 = np.abs(q_c - arr.q("q_nm^-1")[..., None]).max(axis=-1)
    d = np.abs(chi_c - arr.chi[..., None])
    dchi0 = np.minimum(d, 2.0 * math.pi - d).max(axis=-1)
    np.testing.assert_allclose(dq, dq0, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dchi, dchi0, rtol=1e-12, atol=1e-15)
    assert dchi.max() > 3 * np.median(dchi)  # pixels near the beam span a wider azimuth
