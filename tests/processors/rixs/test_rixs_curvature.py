"""Curvature fit (image and hits), the correction it implies, and the fit-curvature CLI."""

from __future__ import annotations

import argparse
import tomllib

import h5py
import numpy as np
import pytest

from beamstream.processors.rixs import EnergyIntegrator, fit_curvature, fit_curvature_hits
from beamstream.processors.rixs.cli import main, register
from tests.processors.rixs.synth import pixel_fractions, view

A, B, Y0 = 0.024084479232443695, -3.695346575286939e-07, 20.3
WIDTH, HEIGHT = 2048, 96


def line(x):
    return Y0 + A * x + B * x * x


def line_image(rng, sigma=1.2, amp=200.0, background=5.0, noise=1.0, y_offset=0):
    """A curved line along y = line(x), integrated over pixel rows, plus background and noise."""
    rows = np.arange(HEIGHT) + y_offset
    img = np.stack([amp * pixel_fractions(line(x), rows, sigma) for x in range(WIDTH)], axis=1)
    return img + background + rng.normal(0.0, noise, img.shape)


@pytest.fixture(scope="module")
def image():
    return line_image(np.random.default_rng(4))


def test_fit_recovers_curvature_from_image(image):
    fit = fit_curvature(image)
    assert fit.a == pytest.approx(A, rel=0.01)
    assert fit.b == pytest.approx(B, rel=0.01)
    assert fit.offset == pytest.approx(Y0, abs=0.05)
    assert fit.residual_rms < 0.05 and len(fit.x) == 64


def test_fit_uses_detector_coordinates():
    """A ROI cut out of the detector: offsets map the fit back to detector coordinates."""
    img = line_image(np.random.default_rng(6), y_offset=10)  # image row 0 is detector row 10
    cut = img[:, 300:1800]
    fit = fit_curvature(cut, x_offset=300, y_offset=10)
    assert fit.a == pytest.approx(A, rel=0.01)
    assert fit.b == pytest.approx(B, rel=0.02)
    assert fit.offset == pytest.approx(Y0, abs=0.05)


def test_fit_recovers_curvature_from_hits():
    rng = np.random.default_rng(9)
    x = rng.uniform(0, WIDTH, 60_000)
    y = line(x) + rng.normal(0, 0.8, x.size)
    bg_x = rng.uniform(0, WIDTH, 3000)
    bg_y = rng.uniform(0, HEIGHT, 3000)
    fit = fit_curvature_hits(np.r_[x, bg_x], np.r_[y, bg_y])
    assert fit.a == pytest.approx(A, rel=0.01)
    assert fit.b == pytest.approx(B, rel=0.02)
    assert fit.offset == pytest.approx(Y0, abs=0.05)


def test_fit_needs_a_line():
    with pytest.raises(ValueError, match="at least 3 blocks"):
        fit_curvature(np.zeros((50, 100)))


def _fwhm_px(spectrum):
    """Second-moment width of a single peak (in bins) after removing the median background."""
    s = spectrum - np.median(spectrum)
    k = np.arange(len(s))
    sel = np.abs(k - np.argmax(s)) <= 8
    w = np.clip(s[sel], 0, None)
    mu = (w * k[sel]).sum() / w.sum()
    return 2.355 * np.sqrt((w * (k[sel] - mu) ** 2).sum() / w.sum())


def test_corrected_line_is_narrowest(image):
    fit = fit_curvature(image)
    widths = {}
    for label, curv in {
        "fit": [fit.a, fit.b],
        "b=0": [fit.a, 0.0],
        "b/2": [fit.a, fit.b / 2],
    }.items():
        integ = EnergyIntegrator(curvature=curv, frame_shape=[HEIGHT, WIDTH], margin=0)
        state = integ.empty()
        integ.update(state, view(image))
        spec = integ.finalize(state)["spectrum"].data[0, 0]
        widths[label] = _fwhm_px(spec)
    # the line (sigma 1.2 px) convolved with the pixel and with the proportional split into
    # one-pixel bins (two unit boxes): FWHM ~ 2.355 * sqrt(1.2**2 + 2/12)
    assert widths["fit"] == pytest.approx(2.355 * np.sqrt(1.2**2 + 2 / 12), rel=0.05)
    assert widths["fit"] < widths["b/2"] < widths["b=0"], widths
    assert widths["b=0"] > 1.04 * widths["fit"], widths  # a 1.55 px bow adds ~6 %


def _toml(out: str) -> dict:
    return tomllib.loads(out)


def test_cli_image_npy_and_h5(tmp_path, image, capsys):
    npy = tmp_path / "img.npy"
    np.save(npy, image)
    assert main(["fit-curvature", str(npy)]) == 0
    a, b = _toml(capsys.readouterr().out)["curvature"]
    assert a == pytest.approx(A, rel=0.01) and b == pytest.approx(B, rel=0.01)

    h5 = tmp_path / "run.h5"
    with h5py.File(h5, "w") as fh:
        fh["entry/image"] = np.stack([image / 2, image / 2])  # 3-D: summed over axis 0
    assert main(["fit-curvature", f"{h5}:/entry/image"]) == 0
    out = capsys.readouterr().out
    a2, b2 = _toml(out)["curvature"]
    assert a2 == pytest.approx(a, rel=1e-9) and b2 == pytest.approx(b, rel=1e-9)
    assert out.startswith("# fit-curvature")


def test_cli_hit_list(tmp_path, capsys):
    rng = np.random.default_rng(2)
    x = rng.uniform(0, WIDTH, 40_000)
    y = line(x) + rng.normal(0, 0.6, x.size)
    npz = tmp_path / "hits.npz"
    np.savez(npz, x=x, y=y)
    assert main(["fit-curvature", str(npz)]) == 0
    a, b = _toml(capsys.readouterr().out)["curvature"]
    assert a == pytest.approx(A, rel=0.01) and b == pytest.approx(B, rel=0.02)
    h5 = tmp_path / "hits.h5"
    rec = np.zeros(x.size, dtype=[("x", "f8"), ("y", "f8"), ("sum", "f8")])
    rec["x"], rec["y"] = x, y
    with h5py.File(h5, "w") as fh:
        fh["hits"] = rec
    assert main(["fit-curvature", f"{h5}:/hits"]) == 0
    a2, _ = _toml(capsys.readouterr().out)["curvature"]
    assert a2 == pytest.approx(a, rel=1e-12)


def test_cli_bad_input(tmp_path, capsys):
    assert main(["fit-curvature", str(tmp_path / "missing.npy")]) == 2
    assert "no such file" in capsys.readouterr().err
    h5 = tmp_path / "x.h5"
    with h5py.File(h5, "w") as fh:
        fh["v"] = np.arange(5)
    assert main(["fit-curvature", f"{h5}:/nothing"]) == 2
    assert main(["fit-curvature", f"{h5}:/v"]) == 2
    assert "expected a 2-D image" in capsys.readouterr().err


def test_register_adds_subcommand():
    parser = argparse.ArgumentParser(prog="beamstream")
    sub = parser.add_subparsers(dest="command")
    register(sub)
    args = parser.parse_args(["fit-curvature", "a.npy", "--block", "16", "--x-offset", "100"])
    assert args.command == "fit-curvature" and args.block == 16 and args.x_offset == 100
    assert callable(args.func)


def test_sparse_blocks_give_no_numpy_warnings():
    """Blocks with a handful of hits (no peak, degenerate widths) are skipped quietly."""
    import warnings

    from beamstream.processors.rixs.curvature import fit_curvature, fit_curvature_hits

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any RuntimeWarning fails the test
        for seed in range(20):
            rng = np.random.default_rng(seed)
            n = 400
            x = rng.uniform(0, 256, n)
            line = rng.random(n) < 0.2
            y = np.where(line, 100 + rng.normal(0, 0.5, n), rng.uniform(0, 200, n))
            fit = fit_curvature_hits(x, y, block=4)  # 1-2 line hits per block: a rough fit
            assert np.isfinite([fit.a, fit.b, fit.offset]).all()
            img = np.zeros((200, 256))
            img[rng.integers(0, 200, 60), rng.integers(0, 256, 60)] = 3.0
            img[100, ::3] += 5.0
            img[:, 250:] = np.nan  # blocks without a finite pixel
            try:
                fit_curvature(img, block=4)
            except ValueError as e:  # too few blocks with a line: said, not warned
                assert "at least 3 blocks" in str(e)
