"""Reading results files: `open_results`, resuming a run, and merging files of one pipeline.

Resume and merge rely on the accumulator states stored next to the results: a resumed run starts
from the stored states (`load_resume`), and `merge_results` merges the stored states of several
files with each accumulator's exact ``merge`` and re-finalizes them through the pipeline built from
the stored config text. Files of a different pipeline (detector, layout, scan or processors) are
refused with the differences named.
"""

from __future__ import annotations

import os
import tomllib
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
from beamstream.formats.overlap import train_overlap
from beamstream.formats.records_read import read_records, records_dataset
from beamstream.formats.results_writer import write_results_file
from beamstream.processors.base import Result, State
from beamstream.processors.pipeline import Pipeline, States
from beamstream.processors.registry import RegistryError, require_registered
from beamstream.processors.xr import to_dataset

__all__ = [
    "ResultsFile",
    "Results",
    "read_results_file",
    "open_results",
    "load_states",
    "load_resume",
    "merge_results",
    "train_overlap",
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
    overlap_trains: int = 0

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
        int(prov.attrs.get("overlap_trains", 0)),
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


def _require_plugins(files: Sequence[ResultsFile]) -> None:
    """Merging builds the pipeline from the files' configs: only registered processors.

    Raises
    ------
    ValueError
        Naming every file with processors that are not registered plug-ins.
    """
    refused = []
    for rf in files:
        raw = tomllib.loads(rf.config_text) if rf.config_text else {}
        types = [str(p.get("type", "")) for p in raw.get("processors", []) if isinstance(p, dict)]
        try:
            require_registered(types, str(rf.path))
        except RegistryError as e:
            refused.append(str(e))
    if refused:
        raise ValueError(
            f"{'; '.join(refused)}; merging runs the code named in the files' stored configs: "
            "pass --trust (trust=True) if you trust where these files come from"
        )


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
    inputs: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    fsync: bool = True,
    allow_overlap: bool = False,
    trust: bool = False,
) -> ResultsFile:
    """Merge the states of results files of one pipeline and write re-finalized results.

    Parameters
    ----------
    allow_overlap
        Merge files whose accepted train ids overlap anyway; the trains counted twice are
        counted in the output's provenance (``@overlap_trains``) and ``overlap_trains``.
    trust
        Also import processors that the stored configs name by a dotted path (code named by
        the files); by default only registered plug-ins are built.

    Raises
    ------
    ValueError
        When fewer than two files are given, the files come from different pipelines, their
        processors are not registered plug-ins, or (without ``allow_overlap``) they share
        train ids (named, with how many trains would be counted twice).
    """
    if len(inputs) < 2:
        raise ValueError("merge: expected at least two results files")
    files = [read_results_file(p) for p in inputs]
    if not trust:  # before anything is built from the stored configs
        _require_plugins(files)
    for rf in files[1:]:
        check_same_pipeline(files[0], rf)
    twice, where = train_overlap(files)
    if twice and not allow_overlap:
        raise ValueError(
            f"merge: {'; '.join(where)}: {twice} trains would be counted twice; merge files "
            "of disjoint train ids, or pass --allow-overlap to count them twice knowingly"
        )
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
        extra={"merged_from": [str(p) for p in inputs], "overlap_trains": twice},
        fsync=fsync,
    )
    return read_results_file(out)


@dataclass
class Results(Mapping):
    """`open_results`' answer: results per processor, records, config and provenance.

    ``results[proc]`` is an ``xarray.Dataset`` when xarray is installed (else a dict of
    `Result`): one variable per result, holding exactly the file's values (every distinct grid
    has its own dim name, e.g. ``q`` and ``q_1d``, see `beamstream.processors.xr`); coordinates
    carry ``units`` and ``long_name``. ``records`` likewise (a dict of arrays without xarray),
    indexed by ``train_id`` (with a ``time`` coordinate from the timestamps): one value per
    train for scalar keys, and for ragged (array-valued) keys a 1-D object array holding one
    array per train (see `read_records`; ``read_records(results.file.records_paths(),
    ragged="flat")`` gives them as ``(values, offsets)``).
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

    def _repr_html_(self) -> str:
        from beamstream.sinks.reprs import human_time, results_table_html

        p = self.provenance
        facts = {
            "config": self.file.config_path,
            "processed trains": p.get("processed"),
            "train ids": " – ".join(str(t) for t in p.get("accepted_train_ids") or []),
            "start": human_time(p.get("start")),
            "end": human_time(p.get("end")),
        }
        return results_table_html(f"Results {self.path.name}", self.file.results, facts)


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
        results: dict[str, Any] = {p: to_dataset(named) for p, named in rf.results.items()}
        if recs is not None:
            recs = records_dataset(recs)
    else:
        results = {p: dict(named) for p, named in rf.results.items()}
    from beamstream.formats.results_writer import combine_segments

    prov = combine_segments(rf.segments)
    prov["segments"] = rf.segments
    return Results(Path(path), results, recs, rf.config_text, prov, rf.snapshot, rf)
