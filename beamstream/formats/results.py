"""Reading results files: `open_results`, resuming a run, and merging files of one pipeline.

Resume and merge rely on the accumulator states stored next to the results: a resumed run starts
from the stored states (`load_resume`), and `merge_results` merges the stored states of several
files with each accumulator's exact ``merge`` and re-finalizes them through the pipeline built from
the stored config text. Files of a different pipeline (detector, layout, scan or processors) are
refused with the differences named.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from beamstream.config import PipelineConfig, fingerprint_diff, parse_config, text_fingerprint
from beamstream.formats.h5layout import (
    from_json,
    iter_results,
    open_h5,
    read_result,
    read_tree,
)
from beamstream.formats.records import RaggedRows, read_columns
from beamstream.formats.results_writer import write_results_file
from beamstream.processors.base import Result, State
from beamstream.processors.pipeline import Pipeline, States

__all__ = [
    "ResultsFile",
    "Results",
    "read_results_file",
    "open_results",
    "load_states",
    "load_resume",
    "merge_results",
    "read_records",
    "Resume",
]


@dataclass
class ResultsFile:
    """Everything a results file holds except the records (see `read_records`)."""

    path: Path
    config_text: str
    config_path: str
    fingerprint: str
    results: dict[str, dict[str, Result]]
    states: dict[str, dict[str, Any]]
    state_types: dict[str, str]
    segments: list[dict[str, Any]]
    records_files: list[str]
    snapshot: dict[str, Any]

    @property
    def last_train_id(self) -> int | None:
        """The last train id the stored states have seen (None: no train yet)."""
        ids = [s["last_train_id"] for s in self.segments if s.get("last_train_id") is not None]
        return max(ids) if ids else None

    def records_paths(self) -> list[Path]:
        return [self.path.parent / r for r in self.records_files]

    def records_rows(self) -> list[int | None]:
        """Per records file, the rows whose trains the stored states hold (None: all rows).

        A records file can hold more rows (appended before a crash stopped the results file from
        being replaced); a resumed run receives those trains again, so they are not read.
        """
        rows: dict[str, int] = {}
        for seg in self.segments:
            rows.update(seg.get("records_rows") or {})
        return [rows.get(name) for name in self.records_files]


def read_results_file(path: str | os.PathLike[str]) -> ResultsFile:
    """Read a file written by `HDF5Sink` (or `merge_results`).

    Raises
    ------
    OSError
        The file is missing or not HDF5.
    ValueError
        It is HDF5 but not a beamstream results file (the message names what is missing).
    """
    p = Path(path)
    with open_h5(p) as f:
        if "entry/config/data" not in f or "entry/states" not in f:
            raise ValueError(
                f"{p}: not a beamstream results file (expected /entry/config and /entry/states, "
                "as written by the hdf5 sink)"
            )
        try:
            return _read_entry(p, f["entry"])
        except (KeyError, TypeError, AttributeError, OSError, ValueError) as e:
            raise ValueError(
                f"{p}: corrupt results file ({type(e).__name__}: {str(e)[:200]})"
            ) from None


def _read_entry(p: Path, entry: Any) -> ResultsFile:
    text = _str(entry["config/data"][()])
    results: dict[str, dict[str, Result]] = {}
    for proc, pg in entry.get("results", {}).items():
        results[_unescape(proc)] = {r.name: r for r in (read_result(g) for g in iter_results(pg))}
    states, types = {}, {}
    for name, g in entry["states"].items():
        states[_unescape(name)] = read_tree(g)
        types[_unescape(name)] = str(g.attrs.get("state_type", ""))
    prov = entry["provenance"]
    segments = from_json(prov.attrs["segments_json"])
    if not isinstance(segments, list) or not all(isinstance(x, dict) for x in segments):
        raise ValueError("provenance segments_json is not a list of segments")
    rec_files = [_str(x) for x in entry["records_files"][()]] if "records_files" in entry else []
    snapshot = {k: _py(entry["snapshot"][k][()]) for k in entry["snapshot"]}
    return ResultsFile(
        p,
        text,
        _str(entry["config/file_name"][()]) if "file_name" in entry["config"] else "",
        str(entry["config"].attrs.get("fingerprint", text_fingerprint(text))),
        results,
        states,
        types,
        segments,
        rec_files,
        snapshot,
    )


def _str(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _unescape(name: str) -> str:
    return name.replace("%2F", "/").replace("%25", "%")


def check_same_pipeline(a: ResultsFile | tuple[str, str], b: ResultsFile | tuple[str, str]) -> None:
    """Raise ValueError naming the differences unless both were made with the same pipeline."""
    wa, ta = (str(a.path), a.config_text) if isinstance(a, ResultsFile) else a
    wb, tb = (str(b.path), b.config_text) if isinstance(b, ResultsFile) else b
    ca, cb = parse_config(ta, wa), parse_config(tb, wb)
    if ca.fingerprint != cb.fingerprint:
        diff = "; ".join(fingerprint_diff(ca, cb)) or "the configs differ"
        raise ValueError(f"{wa} and {wb} come from different pipelines: {diff}")


def load_states(rf: ResultsFile, pipeline: Pipeline) -> States:
    """The stored states as the pipeline's accumulators' own state objects."""
    out: States = {}
    for name, empty in pipeline.empty_states().items():
        if name not in rf.states:
            raise ValueError(f"{rf.path}: no stored state for accumulator {name!r}")
        if not isinstance(empty, State):
            raise ValueError(f"accumulator {name!r}: its state is not a State")
        try:
            state = type(empty).from_dict(rf.states[name])
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ValueError(
                f"{rf.path}: corrupt state of {name!r} ({type(e).__name__}: {e})"
            ) from None
        try:
            empty.compatible(state)
        except ValueError as e:
            raise ValueError(
                f"{rf.path}: state of {name!r} does not fit the pipeline: {e}"
            ) from None
        out[name] = state
    return out


@dataclass
class Resume:
    """What a resumed run starts from."""

    states: States
    segments: list[dict[str, Any]]
    records_files: list[str]
    last_train_id: int | None
    source: ResultsFile = field(repr=False)

    def records_files_for(self, output: str | os.PathLike[str]) -> list[str]:
        """The earlier records files, as paths relative to the directory of ``output``."""
        base = Path(output).resolve().parent
        return [os.path.relpath(p.resolve(), base) for p in self.source.records_paths()]


def load_resume(path: str | os.PathLike[str], config: PipelineConfig) -> Resume:
    """Load the states of a results file to continue its accumulation with ``config``.

    Raises
    ------
    ValueError
        When the file was made with a different pipeline (the differences are named).
    """
    rf = read_results_file(path)
    check_same_pipeline(rf, (config.path, config.text))
    states = load_states(rf, Pipeline(config))
    return Resume(states, rf.segments, rf.records_files, rf.last_train_id, rf)


def merge_results(
    inputs: Sequence[str | os.PathLike[str]], output: str | os.PathLike[str], fsync: bool = True
) -> ResultsFile:
    """Merge the states of results files of one pipeline and write re-finalized results.

    Raises
    ------
    ValueError
        When fewer than two files are given or the files come from different pipelines.
    """
    if len(inputs) < 2:
        raise ValueError("merge: expected at least two results files")
    files = [read_results_file(p) for p in inputs]
    for rf in files[1:]:
        check_same_pipeline(files[0], rf)
    first = files[0]
    pipeline = Pipeline(parse_config(first.config_text, first.config_path or str(first.path)))
    states = load_states(first, pipeline)
    for rf in files[1:]:
        states = pipeline.merge(states, load_states(rf, pipeline))
    out = Path(output)
    records = []
    for rf in files:
        for rp in rf.records_paths():
            records.append(os.path.relpath(rp.resolve(), out.resolve().parent))
    write_results_file(
        out,
        config_text=first.config_text,
        config_path=first.config_path,
        results=pipeline.finalize(states),
        states=states,
        segments=[s for rf in files for s in rf.segments],
        snapshot={
            "seq": 0,
            "time": max(rf.snapshot.get("time", 0.0) for rf in files),
            "epoch": 0,
            "final": True,
        },
        records_files=records,
        extra={"merged_from": [str(p) for p in inputs]},
        fsync=fsync,
    )
    return read_results_file(out)


def read_records(
    paths: Sequence[str | os.PathLike[str]],
    ragged: str = "rows",
    rows: Sequence[int | None] = (),
) -> dict[str, np.ndarray | RaggedRows]:
    """The per-train records of one or more records files, concatenated row by row.

    Scalar columns are 1-D arrays with one value per train (a file without the key: NaN, 0 or
    ``b""``). Ragged columns (array-valued records: hit lists, per-frame values) come as
    ``ragged="rows"`` (default): a 1-D object array with one array per train, of shape
    ``(count, *rest)`` (a train without the value: an empty array); or ``ragged="flat"``: a
    `RaggedRows` ``(values, offsets)``, row ``i`` being ``values[offsets[i]:offsets[i + 1]]``
    (the trailing dims must agree across files). Rows are complete: a file being written or
    left by a killed writer gives the rows all its columns have. ``rows`` (aligned with
    ``paths``, e.g. `ResultsFile.records_rows`) cuts each file to the rows its results hold.
    """
    limits = list(rows) + [None] * (len(paths) - len(rows))
    if ragged not in ("rows", "flat"):
        raise ValueError(f"read_records: ragged must be 'rows' or 'flat', not {ragged!r}")
    parts: list[tuple[dict[str, np.ndarray | RaggedRows], int]] = []
    for p, limit in zip(paths, limits, strict=True):
        if limit == 0 or not Path(p).exists():  # 0: abandoned after a write error
            continue
        with open_h5(p) as f:
            parts.append(read_columns(f, limit))
    protos: dict[str, np.ndarray | RaggedRows] = {}
    for cols, _ in parts:
        for k, v in cols.items():  # ragged in any file: ragged
            if k not in protos or (
                isinstance(v, RaggedRows) and not isinstance(protos[k], RaggedRows)
            ):
                protos[k] = v
    out: dict[str, np.ndarray | RaggedRows] = {}
    for k, proto in protos.items():
        if isinstance(proto, RaggedRows):
            pieces = [_as_ragged(cols.get(k), n, proto) for cols, n in parts]
            if ragged == "rows":
                out[k] = np.concatenate([p.rows() for p in pieces])
            else:
                out[k] = _concat_ragged(k, pieces)
            continue
        chunks = []
        for cols, n in parts:
            v = cols.get(k)
            if v is not None:
                chunks.append(v)
            elif n:
                fill = np.nan if proto.dtype.kind in "fc" else b"" if proto.dtype.kind == "S" else 0
                chunks.append(np.full((n, *proto.shape[1:]), fill, proto.dtype))
        out[k] = np.concatenate(chunks) if chunks else proto
    return out


def _as_ragged(v: np.ndarray | RaggedRows | None, n: int, proto: RaggedRows) -> RaggedRows:
    """One file's part of a ragged column (missing: empty rows; fixed rows of old files: whole)."""
    if isinstance(v, RaggedRows):
        return v
    if v is None:
        return RaggedRows(proto.values[:0], np.zeros(n + 1, np.int64))
    a = np.asarray(v)
    if a.ndim < 2:  # a scalar column in that file: one-element rows
        a = a.reshape(len(a), 1)
    return RaggedRows(a.reshape(-1, *a.shape[2:]), np.arange(len(a) + 1) * a.shape[1])


def _concat_ragged(key: str, pieces: list[RaggedRows]) -> RaggedRows:
    if len(pieces) == 1:
        return pieces[0]
    rests = {p.values.shape[1:] for p in pieces}
    if len(rests) > 1:
        raise ValueError(
            f"records {key!r}: trailing dims differ between files ({sorted(rests)}); "
            "read them with ragged='rows'"
        )
    offsets = [np.zeros(1, np.int64)]
    total = 0
    for p in pieces:
        offsets.append(p.offsets[1:] + total)
        total += int(p.offsets[-1])
    return RaggedRows(np.concatenate([p.values for p in pieces]), np.concatenate(offsets))


@dataclass
class Results(Mapping):
    """`open_results`' answer: results per processor, records, config and provenance.

    ``results[proc]`` is an ``xarray.Dataset`` when xarray is installed (else a dict of
    `Result`); ``records`` likewise (a dict of arrays without xarray): one value per train for
    scalar keys, and for ragged (array-valued) keys a 1-D object array holding one array per train
    (see `read_records`; ``read_records(results.file.records_paths(), ragged="flat")`` gives them
    as ``(values, offsets)``).
    """

    path: Path
    results: dict[str, Any]
    records: Any
    config_text: str
    provenance: dict[str, Any]
    snapshot: dict[str, Any]
    file: ResultsFile = field(repr=False)

    def __getitem__(self, key: str) -> Any:
        return self.results[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)


def _xr_dataset(named: Mapping[str, Result]) -> Any:
    import xarray as xr

    arrays = {
        n: xr.DataArray(r.data, dims=r.dims, coords=r.coords, attrs={"units": r.units, **r.attrs})
        for n, r in named.items()
    }
    try:
        return xr.Dataset(arrays)
    except ValueError:  # results of one processor with clashing axes: keep them apart
        return arrays


def open_results(path: str | os.PathLike[str], records: bool = True) -> Results:
    """Open a beamstream results file for analysis.

    Parameters
    ----------
    path
        A file written by the hdf5 sink or by ``beamstream merge``.
    records
        Also load the per-train records (from the records files listed in the file): scalar
        keys as 1-D arrays, ragged (array-valued) keys as 1-D object arrays of per-train arrays.
    """
    rf = read_results_file(path)
    try:
        import xarray as xr
    except ImportError:
        xr = None
    recs: Any = read_records(rf.records_paths(), rows=rf.records_rows()) if records else None
    if xr is not None:
        results: dict[str, Any] = {p: _xr_dataset(named) for p, named in rf.results.items()}
        if recs is not None:
            recs = xr.Dataset(
                {
                    k: (("train", *[f"{k}_{i}" for i in range(1, v.ndim)]), v)
                    for k, v in recs.items()
                }
            )
            if "train_id" in recs:
                recs = recs.set_coords("train_id")
    else:
        results = {p: dict(named) for p, named in rf.results.items()}
    from beamstream.formats.results_writer import combine_segments

    prov = combine_segments(rf.segments)
    prov["segments"] = rf.segments
    return Results(Path(path), results, recs, rf.config_text, prov, rf.snapshot, rf)
