"""extra-geom geometries from config, q-phi over unassembled pixels vs pyFAI, assembled images."""

from __future__ import annotations

from pathlib import Path

import extra_geom
import numpy as np
import pytest
from pyFAI.integrator.azimuthal import AzimuthalIntegrator

from beamstream.config import ConfigError, parse_config
from beamstream.geometry import Assembler, build_geometry, pixel_positions
from beamstream.processors.base import TrainView
from beamstream.processors.qphi.integrator import QPhiIntegrator
from beamstream.streamer.train import Train

QUADS = [(-525, 625), (-550, -10), (520, -160), (542.5, 475)]


@pytest.mark.parametrize(
    "det, shape",
    [
        ("AGIPD_1M", (16, 512, 128)),
        ("LPD_1M", (16, 256, 256)),
        ("DSSC_1M", (16, 128, 512)),
        ("JUNGFRAU", (8, 512, 1024)),
    ],
)
def test_geometries_from_config(det: str, shape: tuple) -> None:
    geom = build_geometry({"detector": det})
    assert pixel_positions(geom).shape == (*shape, 3)
    assert Assembler(geom).module_shape == shape


def test_geometry_file_and_quadrants_agree(tmp_path: Path) -> None:
    geom = build_geometry({"detector": "AGIPD_1M", "quad_positions": QUADS})
    ref = extra_geom.AGIPD_1MGeometry.from_quad_positions(QUADS)
    np.testing.assert_array_equal(pixel_positions(geom), ref.get_pixel_positions())
    path = tmp_path / "agipd.geom"
    ref.write_crystfel_geom(str(path), photon_energy=9300, adu_per_ev=1, clen=0.1)
    from_file = build_geometry({"detector": "AGIPD_1M", "file": str(path)})
    np.testing.assert_allclose(pixel_positions(from_file), ref.get_pixel_positions(), atol=1e-9)


def test_geometry_errors_are_located() -> None:
    cases = {
        "detector = 'EIGER'": "source.geometry.detector: expected one of AGIPD_1M",
        "detector = 'AGIPD_1M'\nquad_positions = [[1, 2]]": "source.geometry.quad_positions",
        "detector = 'AGIPD_1M'\nfile = 'nope.geom'": "source.geometry.file: expected an existing",
        "detector = 'DSSC_1M'\nquads = 1": "source.geometry.quads: expected one of",
    }
    for body, msg in cases.items():
        with pytest.raises(ConfigError, match=msg):
            parse_config(f"version = 1\n[source.geometry]\n{body}\n", "x.toml")


def test_qphi_on_agipd_pixels_equals_pyfai() -> None:
    """I(q) over the unassembled AGIPD 1M pixels equals pyFAI given the same pixel positions."""
    geom = extra_geom.AGIPD_1MGeometry.from_quad_positions(QUADS)
    rng = np.random.default_rng(4)
    frames = rng.poisson(50.0, (1, 16, 512, 128)).astype(np.float32)
    npt, q_range = 300, (1.0, 20.0)
    qi = QPhiIntegrator(
        geometry={
            "extra_geom": {"detector": "AGIPD_1M", "quad_positions": QUADS},
            "dist": 0.3,
            "wavelength": 1.3e-10,
        },
        npt_q=npt,
        q_range=q_range,
        outputs=["iq"],
    )
    st = qi.empty()
    qi.update(st, TrainView(Train(1), frames=frames))
    ai = AzimuthalIntegrator(dist=0.3, detector=geom.to_pyfai_detector(), wavelength=1.3e-10)
    ref = ai.integrate1d(
        frames[0].reshape(16 * 512, 128),
        npt,
        unit="q_nm^-1",
        method=("no", "histogram", "cython"),
        radial_range=q_range,
        correctSolidAngle=True,
    )
    count = st["count_1d"][0, 0]
    assert count.sum() > 0.5 * frames.size
    # bin 0 holds pyFAI's truncated pixels from below the range; a pixel centre within float
    # rounding of a bin edge may land in the neighbouring bin (see test_qphi_integrate)
    # (AGIPD's regular grid puts whole rows of pixels on the same edge: they move together to
    # the adjacent bin, so the running difference stays small and the total is the same)
    moved = np.cumsum(count[1:] - ref.count[1:])
    assert np.abs(moved).max() <= 16 and moved[-1] == 0
    same = count[1:] == ref.count[1:]
    assert same.mean() > 0.97
    np.testing.assert_allclose(
        st["sum_signal_1d"][0, 0][1:][same], ref.sum_signal[1:][same], rtol=1e-6
    )
    np.testing.assert_allclose(
        st["sum_norm_1d"][0, 0][1:][same], ref.sum_normalization[1:][same], rtol=1e-6
    )


def test_assembled_image_equals_position_modules_gaps_included() -> None:
    geom = extra_geom.AGIPD_1MGeometry.from_quad_positions(QUADS)
    asm = Assembler(build_geometry({"detector": "AGIPD_1M", "quad_positions": QUADS}))
    rng = np.random.default_rng(1)
    data = rng.random((16, 512, 128)).astype(np.float32)
    img = asm.assemble(data)
    ref, centre = geom.position_modules(data)
    np.testing.assert_array_equal(img, ref)  # NaN gaps at the same places
    assert np.isnan(img).sum() == np.isnan(ref).sum() > 0
    assert asm.centre == tuple(centre)
    again = asm.assemble(data * 2)
    assert again is img  # the same buffer, reused
    np.testing.assert_array_equal(again, geom.position_modules(data * 2)[0])
    stack = asm.assemble(np.stack([data, data * 3]))  # e.g. (slot, module, ss, fs)
    np.testing.assert_array_equal(stack[1], geom.position_modules(data * 3)[0])
    with pytest.raises(ValueError, match=r"found module data of shape \(16, 512, 64\)"):
        asm.assemble(data[..., :64])


def test_qphi_takes_the_source_geometry() -> None:
    cfg = parse_config(
        """
version = 1
[source]
detector = "SPB_DET_AGIPD1M-1/DET/{module}CH0:xtdf"
modules = "0-15"
geometry = {detector = "AGIPD_1M"}
[[processors]]
type = "qphi"
geometry = {extra_geom = "source", dist = 0.3, energy = 9.3}
npt_q = 64
outputs = ["iq"]
"""
    )
    from beamstream.processors.pipeline import Pipeline

    qi = Pipeline(cfg).accumulators[0]
    assert qi.detectors[0].inputs.geometry.shape == (16, 512, 128)
    bad = cfg.text.replace('geometry = {detector = "AGIPD_1M"}\n', "")
    with pytest.raises(ConfigError, match=r"geometry.extra_geom: expected a \[source\] geometry"):
        Pipeline(parse_config(bad))
