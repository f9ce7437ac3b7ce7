"""Merge laws of the q-phi state, refusal to merge different configurations, bad inputs."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from beamstream.processors.params import ParamError
from beamstream.processors.qphi.integrator import QPhiIntegrator

from .conftest import SHAPE, geometry_table, poisson_frames, static_mask, view_of

KW = dict(
    npt_q=64, npt_phi=16, q_range=(0.0, 11.0), polarization_factor=0.9, slots=("unpumped", "pumped")
)


def _qi(**over) -> QPhiIntegrator:
    return QPhiIntegrator(geometry=geometry_table(), mask=static_mask(), **{**KW, **over})


def _state(qi, frames, keys, slots):
    st = qi.empty()
    for f, k, s in zip(frames, keys, slots, strict=True):
        qi.update(st, view_of(f, slot=s, slots=KW["slots"], key=k))
    return st


def _close(a, b) -> None:
    assert np.array_equal(a.keys, b.keys)
    for n in a.arrays:
        if a[n].dtype.kind == "i" or n.startswith("count") or n.startswith("sum_signal"):
            # integer-valued inputs: counts and signal sums are exact in float64
            np.testing.assert_array_equal(a[n], b[n], err_msg=n)
        else:
            np.testing.assert_allclose(a[n], b[n], rtol=1e-12, err_msg=n)


@pytest.fixture(scope="module")
def trains():
    rng = np.random.default_rng(0)
    frames = poisson_frames(12, seed=9)
    frames[3, 50:60, 50:60] = np.nan  # a dynamic mask on one frame
    trains = [frames[i : i + 2] for i in range(0, 12, 2)]
    keys = [0.0, 1.0, 0.0, 2.0, 1.0, 0.0]
    slots = [rng.integers(-1, 2, size=2) for _ in trains]
    return trains, keys, slots


def test_merge_is_commutative_associative_and_chunk_independent(trains):
    frames, keys, slots = trains
    qi = _qi()
    whole = _state(qi, frames, keys, slots)
    a = _state(qi, frames[:2], keys[:2], slots[:2])
    b = _state(qi, frames[2:3], keys[2:3], slots[2:3])
    c = _state(qi, frames[3:], keys[3:], slots[3:])
    assert a.merge(b).equals(b.merge(a))
    _close(a.merge(b).merge(c), a.merge(b.merge(c)))
    _close(a.merge(b).merge(c), whole)
    # shuffled train order gives the same sums
    order = [5, 2, 0, 4, 1, 3]
    shuffled = _state(
        qi, [frames[i] for i in order], [keys[i] for i in order], [slots[i] for i in order]
    )
    _close(shuffled, whole)
    assert whole.keys.tolist() == [0.0, 1.0, 2.0]
    res = qi.finalize(whole)
    assert res["I_qphi"].data.shape == (3, 2, 16, 64)
    assert res["I_q"].coords["scan"].tolist() == [0.0, 1.0, 2.0]
    assert whole["n_frames"].sum() == sum(int((s >= 0).sum()) for s in slots)


def test_single_frames_in_one_train_equal_frames_one_by_one(trains):
    frames, _, _ = trains
    qi = _qi(slots=("image",))
    batch = np.concatenate(frames[:3])
    one = qi.empty()
    qi.update(one, view_of(batch))
    many = qi.empty()
    for f in batch:
        qi.update(many, view_of(f[None]))
    _close(one, many)


def test_different_configurations_refuse_to_merge():
    a = _qi().empty()
    with pytest.raises(ValueError):
        a.merge(_qi(npt_q=65).empty())
    other_mask = static_mask()
    other_mask[0, :] = 1
    b = QPhiIntegrator(geometry=geometry_table(), mask=other_mask, **KW).empty()
    with pytest.raises(ValueError, match="configurations"):
        a.merge(b)
    with pytest.raises(ValueError, match="configurations"):
        a.merge(_qi(polarization_factor=0.5).empty())


def test_bad_parameters_raise_readable_errors(tmp_path):
    with pytest.raises(ParamError, match="dist"):
        QPhiIntegrator(geometry=geometry_table(dist=0.0))
    with pytest.raises(ParamError, match="dist"):
        QPhiIntegrator(geometry=geometry_table(dist=-1.0))
    with pytest.raises(ParamError, match="wavelength"):
        QPhiIntegrator(geometry=geometry_table(wavelength=None))
    with pytest.raises(ParamError, match="cannot read PONI file"):
        QPhiIntegrator(poni=str(tmp_path / "nope.poni"))
    bad = tmp_path / "bad.poni"
    bad.write_text("garbage\n")
    with pytest.raises(ParamError, match="key: value"):
        QPhiIntegrator(poni=str(bad))
    with pytest.raises(ParamError, match=r"mask: expected an array of the detector shape"):
        QPhiIntegrator(geometry=geometry_table(), mask=np.zeros((10, 10)))
    with pytest.raises(ParamError, match="q_range: expected a range containing pixels"):
        QPhiIntegrator(geometry=geometry_table(), q_range=(500.0, 600.0))
    with pytest.raises(ParamError, match="npt_q: expected a positive integer"):
        QPhiIntegrator(geometry=geometry_table(), npt_q=-3)
    with pytest.raises(ParamError, match="split"):
        QPhiIntegrator(geometry=geometry_table(), split="full")
    with pytest.raises(ParamError, match="polarization_factor"):
        QPhiIntegrator(geometry=geometry_table(), polarization_factor=1.5)
    with pytest.raises(ParamError, match="geometry"):
        QPhiIntegrator()
    with pytest.raises(ParamError, match="mask"):
        QPhiIntegrator(geometry=geometry_table(), mask=np.ones(SHAPE))
    with pytest.raises(ParamError, match="mask: expected a readable .npy file"):
        QPhiIntegrator(geometry=geometry_table(), mask=str(tmp_path / "none.npy"))


def test_masks_from_npy_and_hdf5_and_frame_shape_errors(tmp_path):
    m = static_mask()
    np.save(tmp_path / "m.npy", m)
    with h5py.File(tmp_path / "m.h5", "w") as f:
        f["entry/mask"] = m
    a = QPhiIntegrator(geometry=geometry_table(), mask=str(tmp_path / "m.npy"), **KW)
    b = QPhiIntegrator(geometry=geometry_table(), mask=f"{tmp_path / 'm.h5'}:/entry/mask", **KW)
    c = QPhiIntegrator(
        geometry=geometry_table(),
        mask={"file": str(tmp_path / "m.h5"), "dataset": "entry/mask"},
        **KW,
    )
    assert a.empty().meta == b.empty().meta == c.empty().meta == _qi().empty().meta
    with pytest.raises(ParamError, match="HDF5"):
        QPhiIntegrator(geometry=geometry_table(), mask=f"{tmp_path / 'm.h5'}:/nope")
    st = a.empty()
    with pytest.raises(ValueError, match=r"expected \(frames, \*\(256, 256\)\)"):
        a.update(st, view_of(np.zeros((2, 100, 100), np.float32), slots=KW["slots"]))
