"""Built-in attribute functions against independent numpy computations; spec parsing."""

from __future__ import annotations

import numpy as np
import pytest

from beamstream.processors.maps import attributes as A
from beamstream.processors.params import ParamError


def ring_cake(q, phi_deg, q0, width, weight, bkg):
    """I(phi, q) of a ring at q0 whose azimuthal weight is weight(phi), on a flat background."""
    radial = np.exp(-0.5 * ((q - q0) / width) ** 2)
    return weight(np.radians(phi_deg))[:, None] * radial[None, :] + bkg


def centres(lo, hi, n):
    return lo + (np.arange(n) + 0.5) * (hi - lo) / n


Q = centres(0.5, 2.0, 150)
PHI = centres(-180.0, 180.0, 360)


def test_roi_mean_and_background():
    iq = 5.0 + 100.0 * np.exp(-0.5 * ((Q - 1.0) / 0.02) ** 2)
    sel = (Q >= 0.95) & (Q <= 1.05)
    assert A.roi(iq, [0.95, 1.05], q=Q) == pytest.approx(iq[sel].mean(), rel=1e-12)
    sub = A.roi(iq, [0.95, 1.05], bkg_q_range=[[0.6, 0.8], [1.2, 1.4]], q=Q)
    assert sub == pytest.approx(iq[sel].mean() - 5.0, rel=1e-9)
    # NaN bins are ignored; an I(phi, q) ROI restricted in phi
    iq2 = iq.copy()
    iq2[np.flatnonzero(sel)[0]] = np.nan
    assert A.roi(iq2, [0.95, 1.05], q=Q) == pytest.approx(np.nanmean(iq2[sel]), rel=1e-12)
    cake = ring_cake(Q, PHI, 1.0, 0.02, lambda p: 1 + np.cos(p) ** 2, 0.0)
    rows = (PHI >= 0) & (PHI <= 90)
    got = A.roi(cake, [0.95, 1.05], [0, 90], q=Q, phi=PHI)
    assert got == pytest.approx(cake[np.ix_(rows, sel)].mean(), rel=1e-12)


def test_total_ignores_nan():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    a[1, 1] = np.nan
    assert A.total(a) == pytest.approx(66.0 - 5.0)
    assert A.total(np.ones((4, 4), np.uint16)) == 16.0


def hermans_numpy(phi_deg, intensity, axis_deg):
    """Independent: np.average of cos^2 with weights I |sin|, on the given samples."""
    psi = np.radians(phi_deg - axis_deg)
    c2 = np.average(np.cos(psi) ** 2, weights=intensity * np.abs(np.sin(psi)))
    return (3 * c2 - 1) / 2


@pytest.mark.parametrize("kappa, axis", [(0.0, 0.0), (1.0, 30.0), (4.0, -60.0), (10.0, 90.0)])
def test_hermans_synthetic_rings(kappa, axis):
    # a Maier-Saupe-like distribution exp(kappa cos^2 psi) around `axis`, on a background
    def weight(p):
        return np.exp(kappa * np.cos(p - np.radians(axis)) ** 2)

    cake = ring_cake(Q, PHI, 1.2, 0.015, weight, 3.0)
    # isotropic: the measured orientation is undefined, so give the axis
    given = axis if kappa == 0 else None
    got = A.hermans(cake, [1.14, 1.26], [[0.9, 1.0], [1.4, 1.5]], given, q=Q, phi=PHI)
    # the same from the noiseless azimuthal profile, computed independently
    sel = (Q >= 1.14) & (Q <= 1.26)
    prof = weight(np.radians(PHI)) * np.exp(-0.5 * ((Q[sel] - 1.2) / 0.015) ** 2).mean()
    assert got == pytest.approx(hermans_numpy(PHI, prof, axis), abs=1e-9)
    # and the continuous integral (fine trapezoid) of the same distribution
    psi = np.linspace(0, np.pi, 200001)
    w = np.exp(kappa * np.cos(psi) ** 2) * np.sin(psi)
    c2 = np.trapezoid(w * np.cos(psi) ** 2, psi) / np.trapezoid(w, psi)
    assert got == pytest.approx((3 * c2 - 1) / 2, abs=2e-4)
    if kappa == 0:
        assert abs(got) < 1e-4
    # the measured axis is the true one: giving it changes nothing
    fixed = A.hermans(cake, [1.14, 1.26], [[0.9, 1.0], [1.4, 1.5]], axis=axis, q=Q, phi=PHI)
    assert fixed == pytest.approx(got, abs=1e-9)


def test_cos2_anisotropy_orientation_and_p2():
    a, phi0 = 0.6, 35.0
    cake = ring_cake(Q, PHI, 1.2, 0.015, lambda p: 1 + a * np.cos(2 * (p - np.radians(phi0))), 0)
    kw = dict(q=Q, phi=PHI)
    assert A.orientation(cake, [1.14, 1.26], **kw) == pytest.approx(phi0, abs=1e-9)
    assert A.anisotropy(cake, [1.14, 1.26], **kw) == pytest.approx(a, abs=1e-9)
    # the documented closed form for I ~ 1 + a cos 2 psi (to the 1-degree binning)
    assert A.hermans(cake, [1.14, 1.26], **kw) == pytest.approx(4 * a / (15 - 5 * a), abs=2e-4)
    # orientation is reported in [0, 180)
    cake2 = ring_cake(Q, PHI, 1.2, 0.015, lambda p: 1 + a * np.cos(2 * (p + np.radians(20))), 0)
    assert A.orientation(cake2, [1.14, 1.26], **kw) == pytest.approx(160.0, abs=1e-9)


def test_make_spec_defaults_and_errors():
    s = A.make_spec("i", {"function": "roi", "q_range": [1, 2]})
    assert (s.input, s.wants_q, s.wants_phi) == ("iq", True, False)
    s = A.make_spec("h", {"function": "hermans", "q_range": [1, 2], "units": ""})
    assert (s.input, s.wants_q, s.wants_phi) == ("iqphi", True, True)
    s = A.make_spec("m", {"function": "monitor", "source": "S", "key": "k"})
    assert (s.input, s.wants_frame) == ("train", True)
    u = A.make_spec("u", {"function": "tests.processors.maps.userattrs:scaled_max", "input": "iq"})
    assert u.func(np.array([1.0, 3.0]), **{"scale": 2.0}) == 6.0
    with pytest.raises(ParamError, match="attributes.x.function"):
        A.make_spec("x", {"function": "nope"})
    with pytest.raises(ParamError, match="importable"):
        A.make_spec("x", {"function": "tests.processors.maps.userattrs:missing", "input": "iq"})
    with pytest.raises(ParamError, match="attributes.x.input"):
        A.make_spec("x", {"function": "tests.processors.maps.userattrs:text"})  # no default
    with pytest.raises(ParamError, match="attributes.x.qrange"):
        A.make_spec("x", {"function": "roi", "qrange": [1, 2]})
    with pytest.raises(ParamError, match="attributes.x.input"):
        A.make_spec("x", {"function": "hermans", "input": "iq", "q_range": [1, 2]})
    with pytest.raises(ParamError, match="attributes.x.q"):
        A.make_spec("x", {"function": "roi", "q": [1, 2]})
