"""Per-pixel geometry against pyFAI: q, chi, 2theta, solid angle, polarization; PONI; extra-geom."""

from __future__ import annotations

import numpy as np
import pytest

from beamstream.processors.qphi.geometry import DetectorGeometry
from beamstream.processors.qphi.poni import PoniError, parse_poni
from beamstream.processors.qphi.units import HC_KEV_A

from .conftest import GEOM, PIXEL, SHAPE, pyfai_ai

ROTS = [(0.0, 0.0, 0.0), (0.03, -0.04, 0.2), (-0.2, 0.15, -1.1)]


def _ours(**over) -> DetectorGeometry:
    g = {**GEOM, **over}
    return DetectorGeometry.flat(pixel1=PIXEL, pixel2=PIXEL, shape=SHAPE, **g)


@pytest.mark.parametrize("rots", ROTS)
def test_arrays_equal_pyfai(rots):
    over = dict(zip(("rot1", "rot2", "rot3"), rots, strict=True))
    ai = pyfai_ai(**over)
    arr = _ours(**over).arrays()
    np.testing.assert_allclose(arr.q("q_nm^-1"), ai.center_array(SHAPE, unit="q_nm^-1"), rtol=1e-7)
    np.testing.assert_allclose(arr.q("q_A^-1"), ai.center_array(SHAPE, unit="q_A^-1"), rtol=1e-7)
    np.testing.assert_allclose(arr.tth, ai.center_array(SHAPE, unit="2th_rad"), rtol=1e-7)
    # chi in degrees: compare absolutely (chi crosses 0), 1e-7 of the 180 deg scale
    np.testing.assert_allclose(
        np.degrees(arr.chi), ai.center_array(SHAPE, unit="chi_deg"), rtol=0, atol=180 * 1e-7
    )
    np.testing.assert_allclose(arr.solid_angle, ai.solidAngleArray(SHAPE), rtol=1e-7)
    for factor, offset in ((0.0, 0.0), (0.95, 0.0), (-0.5, 0.3), (1.0, 1.2)):
        np.testing.assert_allclose(
            arr.polarization(factor, offset),
            ai.polarization(SHAPE, factor=factor, axis_offset=offset),
            rtol=1e-7,
        )
    assert np.all(arr.polarization(None) == 1)


def test_chi_convention_rows_are_plus_90_degrees():
    """pyFAI: chi = +90 deg towards larger row index, 0 towards larger column index."""
    g = DetectorGeometry.flat(
        dist=0.1,
        poni1=0.0128,
        poni2=0.0128,
        pixel1=PIXEL,
        pixel2=PIXEL,
        shape=SHAPE,
        wavelength=1e-10,
    )
    chi = np.degrees(g.arrays().chi)
    assert chi[250, 128] == pytest.approx(90.0, abs=0.3)
    assert chi[128, 250] == pytest.approx(0.0, abs=0.3)


def test_energy_in_kev_gives_the_wavelength():
    a = DetectorGeometry.flat(
        pixel1=PIXEL, pixel2=PIXEL, shape=SHAPE, **{**GEOM, "wavelength": None}, energy=12.4
    )
    assert a.wavelength == pytest.approx(HC_KEV_A / 12.4 * 1e-10, rel=1e-15)
    ai = pyfai_ai(wavelength=a.wavelength)
    np.testing.assert_allclose(a.arrays().q(), ai.center_array(SHAPE, unit="q_nm^-1"), rtol=1e-7)


def test_poni_written_by_pyfai_round_trips(tmp_path):
    ai = pyfai_ai()
    path = tmp_path / "det.poni"
    ai.write(str(path))
    g = DetectorGeometry.from_poni(str(path))
    assert g.shape == SHAPE
    assert (g.dist, g.rot3, g.pixel1) == pytest.approx((GEOM["dist"], GEOM["rot3"], PIXEL))
    np.testing.assert_allclose(g.arrays().q(), ai.center_array(SHAPE, unit="q_nm^-1"), rtol=1e-7)


PONI_V1 = """# Nota: C-Order, 1 refers to the Y axis, 2 to the X axis
# Calibration done at Thu Mar 10 10:00:00 2016
PixelSize1: 7.5e-05
PixelSize2: 0.000172
Distance: 0.25
Poni1: 0.04
Poni2: 0.05
Rot1: 0.01
Rot2: -0.02
Rot3: 0.0
Wavelength: 9.5e-11
"""

PONI_V2 = """poni_version: 2
Detector: Pilatus1M
Detector_config: {"pixel1": 0.000172, "pixel2": 0.000172}
Distance: 0.3
Poni1: 0.1
Poni2: 0.09
Rot1: 0
Rot2: 0
Rot3: 0
Wavelength: 1.0332e-10
"""


def test_poni_version_1_and_2(tmp_path):
    v1 = parse_poni(PONI_V1)
    assert v1["pixel1"] == 7.5e-05 and v1["pixel2"] == 0.000172
    assert v1["dist"] == 0.25 and v1["rot2"] == -0.02 and v1["wavelength"] == 9.5e-11
    assert "shape" not in v1
    v2 = parse_poni(PONI_V2)
    assert v2["poni_version"] == 2.0 and v2["detector"] == "Pilatus1M"
    assert v2["pixel1"] == 0.000172 and v2["dist"] == 0.3
    p = tmp_path / "v2.poni"
    p.write_text(PONI_V2)
    # a named detector carries no shape in its PONI: the error says what to add
    with pytest.raises(ValueError, match="shape"):
        DetectorGeometry.from_poni(str(p))
    g = DetectorGeometry.from_poni(str(p), shape=(1043, 981))
    assert g.shape == (1043, 981) and g.poni2 == 0.09


def test_poni_errors(tmp_path):
    with pytest.raises(PoniError, match="cannot read PONI file"):
        DetectorGeometry.from_poni(str(tmp_path / "missing.poni"))
    with pytest.raises(PoniError, match="key: value"):
        parse_poni("this is not a poni file\n")
    with pytest.raises(PoniError, match="Distance is not a number"):
        parse_poni(PONI_V1.replace("Distance: 0.25", "Distance: far"))
    with pytest.raises(PoniError, match="orientation 2"):
        parse_poni(PONI_V2.replace('{"pixel1"', '{"orientation": 2, "pixel1"'))
    with pytest.raises(PoniError, match="missing dist"):
        parse_poni("PixelSize1: 1e-4\n")


def test_bad_geometry_values():
    with pytest.raises(ValueError, match="dist: expected a positive distance"):
        _ours(dist=0.0)
    with pytest.raises(ValueError, match="dist: expected a positive distance"):
        _ours(dist=-0.1)
    with pytest.raises(ValueError, match="missing wavelength"):
        _ours(wavelength=None)
    with pytest.raises(ValueError, match="pixel1"):
        DetectorGeometry.flat(pixel1=0.0, pixel2=PIXEL, shape=SHAPE, **GEOM)


def test_extra_geom_agipd_pixel_positions_equal_pyfai():
    """extra-geom AGIPD-1M: q and chi from get_pixel_positions() equal pyFAI with
    to_pyfai_detector() (beam centre off the origin, a tilt)."""
    extra_geom = pytest.importorskip("extra_geom")
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    quad_pos = [(-525, 625), (-550, -10), (520, -160), (542.5, 475)]
    geom = extra_geom.AGIPD_1MGeometry.from_quad_positions(quad_pos)
    pos = geom.get_pixel_positions()
    xb, yb = -0.002, 0.001
    ai = AzimuthalIntegrator(
        dist=0.5, poni1=yb, poni2=xb, rot1=0.01, detector=geom.to_pyfai_detector(), wavelength=1e-10
    )
    ours = DetectorGeometry.from_pixel_positions(
        pos, dist=0.5, beam_center=(xb, yb), rot1=0.01, wavelength=1e-10
    )
    assert ours.shape == (16, 512, 128)
    arr = ours.arrays()
    q_ref = ai.center_array(unit="q_nm^-1")
    np.testing.assert_allclose(arr.q().reshape(q_ref.shape), q_ref, rtol=1e-6)
    np.testing.assert_allclose(
        np.degrees(arr.chi).reshape(q_ref.shape), ai.center_array(unit="chi_deg"), atol=1e-4
    )
    np.testing.assert_allclose(
        arr.solid_angle.reshape(q_ref.shape), ai.solidAngleArray(), rtol=1e-6
    )
