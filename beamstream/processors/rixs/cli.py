"""``beamstream fit-curvature``: fit the hRIXS line curvature and print it in config form.

The main CLI calls `register` with its subparsers; ``python -m beamstream.processors.rixs.cli``
runs the subcommand on its own.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from beamstream.processors.rixs.curvature import CurvatureFit, fit_curvature, fit_curvature_hits

__all__ = ["register", "run_fit_curvature", "load_source", "main"]

_H5_SUFFIXES = (".h5", ".hdf5", ".nxs", ".cxi")


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``fit-curvature`` subcommand to an ``argparse`` subparsers object.

    The subparser sets ``func`` to `run_fit_curvature` (call ``args.func(args)``; it returns the
    exit status).
    """
    p = subparsers.add_parser(
        "fit-curvature",
        help="fit the RIXS line curvature of an image or a hit list",
        description=(
            "Fit y = offset + a*x + b*x**2 to the line centres found in blocks of columns of an "
            "accumulated image (y = energy axis, rows) or of a hit list, and print "
            "'curvature = [a, b]' for the processor config."
        ),
    )
    p.add_argument(
        "source",
        help=(
            "image .npy (2-D, or 3-D summed over the first axis), HDF5 dataset 'file.h5:/path', "
            "or a hit list: .npz or HDF5 group with 'x' and 'y' arrays, a structured array "
            "with fields x and y, or the hit lists of a run: its records file "
            "(run.records.h5) or results file (run.h5), all trains concatenated "
            "('run.h5:rixs.hits' names the key when several processors record hits)"
        ),
    )
    p.add_argument("--hits", action="store_true", help="the source is a hit list")
    p.add_argument(
        "--block",
        type=float,
        default=None,
        help="columns per block (image default: width/64; hits default: x extent/32)",
    )
    p.add_argument("--bin-width", type=float, default=0.5, help="hit histogram bin width (px)")
    p.add_argument("--x-offset", type=int, default=0, help="detector x of the image's first column")
    p.add_argument("--y-offset", type=int, default=0, help="detector y of the image's first row")
    p.set_defaults(func=run_fit_curvature)
    return p


def _split_h5(source: str) -> tuple[str, str] | None:
    head, sep, tail = source.rpartition(":")
    if sep and head.lower().endswith(_H5_SUFFIXES):
        return head, tail or "/"
    return None


def load_source(source: str, hits: bool = False) -> tuple[str, Any]:
    """Read ``source``: ``("image", array)`` or ``("hits", (x, y))``.

    Raises
    ------
    ValueError
        When the file or dataset is missing or holds neither an image nor a hit list.
    """
    run_hits = _records_hits(source)
    if run_hits is not None:
        return "hits", run_hits
    h5 = _split_h5(source)
    if h5 is not None:
        import h5py

        path, name = h5
        if not Path(path).is_file():
            raise ValueError(f"no such file: {path}")
        with h5py.File(path, "r") as fh:
            if name not in fh:
                raise ValueError(f"{path} has no dataset {name}")
            obj = fh[name]
            if isinstance(obj, h5py.Group):
                if "x" in obj and "y" in obj:
                    return "hits", (obj["x"][()], obj["y"][()])
                raise ValueError(f"{source}: a group without 'x' and 'y' datasets")
            data = obj[()]
    else:
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"no such file: {source}")
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                if "x" in z and "y" in z:
                    return "hits", (z["x"], z["y"])
                if len(z.files) != 1:
                    raise ValueError(f"{source}: expected arrays 'x' and 'y' or a single image")
                data = z[z.files[0]]
        else:
            data = np.load(path, allow_pickle=False)
    data = np.asarray(data)
    if data.dtype.names and {"x", "y"} <= set(data.dtype.names):
        return "hits", (data["x"], data["y"])
    if hits:
        if data.ndim == 2 and data.shape[1] == 2:
            return "hits", (data[:, 1], data[:, 0])  # rows of (y, x)
        raise ValueError(f"{source}: a hit list needs fields x and y (or rows of (y, x))")
    if data.ndim not in (2, 3) or not np.issubdtype(data.dtype, np.number):
        raise ValueError(f"{source}: expected a 2-D image (y, x), got {data.dtype} {data.shape}")
    return "image", data


def _records_hits(source: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The hit lists of every train of a run (records or results file), concatenated in train
    order; None when ``source`` is no such file. ``file:key`` picks ``key.x``/``key.y``."""
    h5 = _split_h5(source)
    path, key = h5 if h5 is not None else (source, "")
    key = key.strip("/")
    if not path.lower().endswith(_H5_SUFFIXES) or not Path(path).is_file():
        return None
    import h5py

    from beamstream.formats.records_read import read_records

    with h5py.File(path, "r") as fh:
        if "records" in fh and "entry" not in fh:
            paths = [Path(path)]
        elif "entry/records_files" in fh:
            names = [
                n.decode() if isinstance(n, bytes) else str(n) for n in fh["entry/records_files"]
            ]
            paths = [Path(path).parent / n for n in names]
        else:
            return None
        if key and key in fh:  # an ordinary dataset or group path
            return None
    cols = read_records(paths, ragged="flat")
    prefixes = sorted(k[: -len(".x")] for k in cols if k.endswith(".x") and k[:-2] + ".y" in cols)
    if key:
        prefixes = [p for p in prefixes if p == key]
    if len(prefixes) != 1:
        found = ", ".join(prefixes) or "none"
        raise ValueError(
            f"{path}: expected one hit list in the records (keys <name>.x and <name>.y), found "
            f"{found}; name it as {path}:<name>"
        )
    x, y = (cols[f"{prefixes[0]}.{c}"] for c in "xy")
    return np.asarray(getattr(x, "values", x)), np.asarray(getattr(y, "values", y))


def fit_source(
    source: str,
    *,
    hits: bool = False,
    block: float | None = None,
    bin_width: float = 0.5,
    x_offset: int = 0,
    y_offset: int = 0,
) -> CurvatureFit:
    """Load ``source`` and fit the curvature (see `load_source`)."""
    kind, data = load_source(source, hits)
    if kind == "hits":
        return fit_curvature_hits(*data, block=block, bin_width=bin_width)
    return fit_curvature(
        data,
        block=None if block is None else int(block),
        x_offset=x_offset,
        y_offset=y_offset,
    )


def run_fit_curvature(args: argparse.Namespace) -> int:
    """Run the subcommand: print the fit in TOML form; exit status 0, or 2 on bad input."""
    try:
        fit = fit_source(
            args.source,
            hits=args.hits,
            block=args.block,
            bin_width=args.bin_width,
            x_offset=args.x_offset,
            y_offset=args.y_offset,
        )
    except (ValueError, OSError) as exc:
        print(f"fit-curvature: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(fit.to_toml(args.source))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry: ``python -m beamstream.processors.rixs.cli fit-curvature ...``."""
    parser = argparse.ArgumentParser(prog="beamstream")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
