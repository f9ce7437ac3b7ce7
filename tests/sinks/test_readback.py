"""Every config/ example's output read back: xarray equals h5py, NeXus viewers (silx), SAS tools."""

from __future__ import annotations

import warnings

import h5py
import numpy as np
import pytest

from beamstream.formats.h5layout import iter_results
from beamstream.formats.results import open_results
from tests.examples import EXAMPLES

xr = pytest.importorskip("xarray")

#: the default plot of every example: (result shown, kind, with errors)
DEFAULT_PLOTS = {
    "dssc_pump_probe.toml": ("binned/pump_probe", "image", False),
    "minimal.toml": ("mean/mean", "image", False),
    "rixs_centroid.toml": ("rixs/spectrum", "curve", True),
    "saxs_qphi.toml": ("qphi/I_q", "curve", True),
    "scan_map.toml": ("maps/maps/int_saxs", "image", False),
}


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind in "fc" and b.dtype.kind in "fc":
        return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))
    if a.dtype.kind in "OSU" or b.dtype.kind in "OSU":

        def text(x: np.ndarray) -> list[str]:
            return [v.decode() if isinstance(v, bytes) else str(v) for v in x.ravel()]

        return a.shape == b.shape and text(a) == text(b)
    return a.shape == b.shape and bool(np.array_equal(a, b))


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_open_results_holds_exactly_what_the_file_holds(example_outputs, name):
    path = example_outputs[name]
    res = open_results(path)
    with h5py.File(path) as f:
        for pg in f["entry/results"].values():
            ds = res[pg.name.rsplit("/", 1)[-1]]
            for g in iter_results(pg):
                var = ds[g.attrs["result_name"]]
                data = g["data"][()]
                assert var.shape == data.shape, g.name  # nothing padded by an outer join
                assert _same(var.values, data), g.name  # NaN where the file has NaN, only there
                for dim_i, dim in enumerate(g.attrs["dims"]):
                    coord_dim = var.dims[dim_i]
                    if dim in g:
                        assert _same(var[coord_dim].values, g[dim][()]), (g.name, dim)
                        assert var[coord_dim].attrs["long_name"]
                        if "units" in g[dim].attrs:
                            assert var[coord_dim].attrs["units"] == g[dim].attrs["units"]
        recs = f["entry/records"]
        assert res.records["train_id"].dims == ("train_id",)
        for key, d in recs.items():
            if "index" in d.attrs:  # ragged: row i is values[start:start+count]
                index = f["entry/records_index"][key][()]
                values = d[()]
                rows = res.records[key].values
                assert len(rows) == len(index)
                for row, (start, count) in zip(rows, index, strict=True):
                    assert _same(row, values[start : start + count])
            else:
                assert _same(res.records[key].values, d[()]), key


def test_grids_keep_their_own_dims(example_outputs):
    res = open_results(example_outputs["saxs_qphi.toml"])["qphi"]
    assert res["I_q"].dims == ("scan", "slot", "q_1d") and res.sizes["q_1d"] == 1000
    assert res["I_qphi"].dims == ("scan", "slot", "phi", "q") and res.sizes["q"] == 500
    assert res["q_1d"].attrs["units"] == "1/nm"
    with h5py.File(example_outputs["saxs_qphi.toml"]) as f:
        nan_in_file = int(np.isnan(f["entry/results/qphi/I_q/data"][()]).sum())
    assert int(res["I_q"].isnull().sum()) == nan_in_file
    binned = open_results(example_outputs["dssc_pump_probe.toml"])["binned"]
    assert binned["mean"].sizes["slot"] == 4
    assert binned["mean_dark_subtracted"].dims[1] == "slot_mean_dark_subtracted"
    assert binned["mean_dark_subtracted"].shape[1] == 2
    scan = binned["scan"]
    assert scan.attrs == {
        "long_name": "SCS_ILH_LAS/MDL/OPTICALDELAY_PP800/actualPosition",
        "units": "ps",
    }


def test_map_axes_name_their_motors(example_outputs):
    maps = open_results(example_outputs["scan_map.toml"])["maps"]
    x = maps["maps/int_saxs"]["x"]
    assert x.attrs == {"long_name": "SA1_EXP_SAMPLE/MOTOR/SCAN_X/actualPosition", "units": "mm"}


def test_result_to_xarray_and_html(example_outputs):
    rf = open_results(example_outputs["saxs_qphi.toml"]).file
    r = rf.results["qphi"]["I_q"]
    da = r.to_xarray()
    assert da.dims == r.dims and np.array_equal(da.values, r.data, equal_nan=True)
    assert da.attrs["errors"] == "sigma_q" and da["q"].attrs["units"] == "1/nm"
    assert "I_q" in r._repr_html_() and "1/nm" in r._repr_html_()
    page = open_results(example_outputs["saxs_qphi.toml"])._repr_html_()
    assert "I_q" in page and "★" in page and "saxs_qphi.toml" in page


def test_snapshot_and_hub_html(hub):
    page = hub._repr_html_()
    snap = hub.latest()
    assert page == snap._repr_html_()
    assert f"Snapshot {snap.seq}" in page and "processed trains" in page
    for proc, named in snap.results.items():
        for name in named:
            assert f"<b>{name}</b>" in page, (proc, name)
    assert "no snapshot yet" in type(hub)()._repr_html_()


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_silx_draws_the_science_result(example_outputs, name):
    nxdata = pytest.importorskip("silx.io.nxdata")
    shown, kind, with_errors = DEFAULT_PLOTS[name]
    with h5py.File(example_outputs[name]) as f, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        plot = nxdata.get_default(f)
        assert plot is not None and plot.is_valid, name
        assert plot.group.name == "/entry/plot"
        assert plot.group.attrs["source"] == f"results/{shown}"
        source = f["entry/results"][shown]["data"][()]
        assert np.array_equal(plot.signal[()].ravel(), source.ravel(), equal_nan=True)
        assert 1 not in plot.signal.shape  # size-1 dims squeezed
        assert plot.title.startswith(shown.split("/", 1)[1])
        assert plot.is_curve if kind == "curve" else plot.is_image
        assert plot.interpretation == ("spectrum" if kind == "curve" else "image")
        assert (plot.errors is not None) == with_errors
        if with_errors:
            assert plot.errors.shape == plot.signal.shape
        numeric = [a for a in plot.axes if a is not None]
        assert all(a.attrs.get("long_name") and a.attrs.get("units") for a in numeric) or (
            name == "minimal.toml" and not numeric  # detector pixels: no coordinates
        )
        # each processor's own default is a valid NXdata too, never a bookkeeping count
        for proc in f["entry/results"].values():
            own = nxdata.get_default(proc)
            assert own is not None and own.is_valid, proc.name
        if name == "dssc_pump_probe.toml":
            assert f["entry/results/binned"].attrs["default"] == "pump_probe"


def test_curves_have_their_errors(example_outputs):
    nxdata = pytest.importorskip("silx.io.nxdata")
    with h5py.File(example_outputs["saxs_qphi.toml"]) as f:
        plot = nxdata.get_default(f)
        sigma = f["entry/results/qphi/sigma_q/data"][0, 0]
        assert np.array_equal(plot.errors[()], sigma, equal_nan=True)
        assert plot.axes[0].attrs["units"] == "1/nm"
    with h5py.File(example_outputs["rixs_centroid.toml"]) as f:
        plot = nxdata.get_default(f)
        np.testing.assert_allclose(plot.errors[()] ** 2, plot.signal[()], rtol=1e-12)  # Poisson


def test_instrument_groups(example_outputs):
    with h5py.File(example_outputs["saxs_qphi.toml"]) as f:
        entry = f["entry"]
        assert entry["instrument"].attrs["NX_class"] == "NXinstrument"
        det = entry["instrument/detector"]
        assert det.attrs["NX_class"] == "NXdetector"
        assert det["distance"][()] == 0.6 and det["distance"].attrs["units"] == "m"
        assert det["x_pixel_size"][()] == 7.5e-5
        assert det["beam_center_x"][()] == pytest.approx(0.03759 / 7.5e-5)
        assert det["geometry_pyfai/rot1"][()] == 0.004
        beam = entry["beam"]
        assert beam.attrs["NX_class"] == "NXbeam"
        assert beam["incident_wavelength"][()] == pytest.approx(1.0332016536100021)
        assert beam["incident_wavelength"].attrs["units"] == "angstrom"
        assert beam["incident_energy"][()] == pytest.approx(12000.0, rel=1e-4)
        assert entry["sample"].attrs["NX_class"] == "NXsample"
    with h5py.File(example_outputs["rixs_centroid.toml"]) as f:
        assert f["entry/beam/incident_energy"][()] == 930.0
    with h5py.File(example_outputs["dssc_pump_probe.toml"]) as f:
        motor = f["entry/sample/scan_motor/name"][()].decode()
        assert motor == "SCS_ILH_LAS/MDL/OPTICALDELAY_PP800/actualPosition"
    with h5py.File(example_outputs["scan_map.toml"]) as f:
        assert f["entry/sample/name"][()].decode() == "scan"


def _cansas_required_fields(f: h5py.File) -> None:
    """The fields the NXcanSAS definition requires of a SASentry and its SASdata."""
    entries = [g for g in f.values() if g.attrs.get("canSAS_class") == "SASentry"]
    assert entries
    for e in entries:
        assert e.attrs["NX_class"] == "NXentry" and e.attrs["version"] == "1.1"
        assert e["definition"][()].decode() == "NXcanSAS"
        assert e["title"][()] and e["run"][()]
        d = e["sasdata"]
        assert d.attrs["canSAS_class"] == "SASdata" and d.attrs["NX_class"] == "NXdata"
        assert d.attrs["signal"] == "I" and d.attrs["I_axes"] == "Q"
        assert list(d.attrs["Q_indices"]) == [0]
        assert d["I"].attrs["units"] and d["Q"].attrs["units"] == "1/nm"
        assert d["I"].attrs["uncertainties"] == "Idev" and d["Idev"].shape == d["I"].shape


@pytest.mark.parametrize("name", ["saxs_qphi.toml", "scan_map.toml"])
def test_iq_as_nxcansas(example_outputs, name):
    path = example_outputs[name]
    cansas = path.with_name(path.stem + ".cansas.h5")
    with h5py.File(path) as f:
        assert f["entry/cansas_file"][()].decode() == cansas.name
        iq = f["entry/results/qphi/I_q/data"][0, 0]
        q = f["entry/results/qphi/I_q/q"][()]
        sigma = f["entry/results/qphi/sigma_q/data"][0, 0]
    ok = np.isfinite(iq)
    with h5py.File(cansas) as f:
        _cansas_required_fields(f)
    loader = pytest.importorskip("sasdata.dataloader.loader")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = loader.Loader().load(str(cansas))
    assert len(data) == 1 and not data[0].errors
    d = data[0]
    np.testing.assert_array_equal(d.y, iq[ok])
    np.testing.assert_array_equal(d.dy, sigma[ok])
    np.testing.assert_allclose(d.x, q[ok] / 10, rtol=1e-12)  # sasdata converts 1/nm to 1/A
    assert d.source.wavelength == pytest.approx(1.0332016536100021)


def test_records_dataset_times_and_index():
    from beamstream.formats.records_read import records_dataset

    rows = np.empty(3, object)
    rows[:] = [np.arange(2.0), np.arange(0.0), np.arange(3.0)]
    ds = records_dataset(
        {
            "train_id": np.array([7, 8, 9]),
            "timestamp": np.array([1.7e9, np.nan, 1.7e9 + 0.25]),
            "hits": rows,
        }
    )
    assert ds.indexes["train_id"].tolist() == [7, 8, 9]
    assert ds["timestamp"].isnull().values.tolist() == [False, True, False]  # stays as stored
    times = ds["time"].values
    assert str(times[0]) == "2023-11-14T22:13:20.000000000" and np.isnat(times[1])
    assert (times[2] - times[0]) == np.timedelta64(250, "ms")
    assert ds["hits"].sel(train_id=9).item().tolist() == [0.0, 1.0, 2.0]


def test_cansas_entry_per_scan_bin_and_slot(tmp_path):
    from beamstream.formats.nexus import write_cansas
    from beamstream.processors.base import Result

    q = np.linspace(0.1, 1.0, 20)
    data = np.arange(2 * 2 * 20, dtype=np.float64).reshape(2, 2, 20) + 1
    data[1, 1] = np.nan  # nothing in that bin and slot: no entry
    coords = {"scan": np.array([0.5, 1.5]), "slot": np.array(["on", "off"]), "q": q}
    dims = ("scan", "slot", "q")
    named = {
        "I_q": Result("I_q", data, dims, coords, "", {"q": "1/nm"}, {"errors": "sigma_q"}),
        "sigma_q": Result("sigma_q", np.sqrt(data), dims, coords, "", {"q": "1/nm"}),
    }
    with h5py.File(tmp_path / "c.h5", "w", track_order=True) as f:
        names = write_cansas(f, {"qphi": named}, "", "t")
        _cansas_required_fields(f)
        assert names == ["sasentry", "sasentry02", "sasentry03"]
        assert "scan = 1.5, slot = on" in f["sasentry03/title"][()].decode()
    loader = pytest.importorskip("sasdata.dataloader.loader")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = loader.Loader().load(str(tmp_path / "c.h5"))
    assert len(loaded) == 3
    for d, idx in zip(loaded, [(0, 0), (0, 1), (1, 0)], strict=True):
        np.testing.assert_array_equal(d.y, data[idx])
        np.testing.assert_array_equal(d.dy, np.sqrt(data[idx]))
