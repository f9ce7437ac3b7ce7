"""Train ids shared by results files: what `merge_results` refuses to count twice."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from beamstream.formats.h5layout import open_h5

if TYPE_CHECKING:
    from beamstream.formats.results import ResultsFile

__all__ = ["train_overlap"]


def _accepted_ids(rf: ResultsFile) -> np.ndarray | None:
    """The train ids of a file's records (None when a records file is missing)."""
    ids = []
    for p in rf.records_paths():
        if not p.exists():
            return None
        with open_h5(p) as f:
            if "records/train_id" not in f:
                return None
            ids.append(np.asarray(f["records/train_id"][()], np.int64))
    return np.unique(np.concatenate(ids)) if ids else None


def _ranges(rf: ResultsFile) -> list[tuple[int, int]]:
    return [
        (int(s["accepted_train_ids"][0]), int(s["accepted_train_ids"][1]))
        for s in rf.segments
        if s.get("accepted_train_ids")
    ]


def train_overlap(files: Sequence[ResultsFile]) -> tuple[int, list[str]]:
    """How many trains more than one of ``files`` accepted, and where (pairwise, readable).

    Exact from the records' train ids where every file has its records; otherwise the length of
    the overlap of the provenance's train-id ranges (an upper bound, said as "up to").
    """
    total, where = 0, []
    ids = [_accepted_ids(rf) for rf in files]
    for i, a in enumerate(files):
        for j in range(i + 1, len(files)):
            b = files[j]
            spans = [
                (max(a0, b0), min(a1, b1))
                for a0, a1 in _ranges(a)
                for b0, b1 in _ranges(b)
                if max(a0, b0) <= min(a1, b1)
            ]
            if not spans:
                continue
            if ids[i] is not None and ids[j] is not None:
                n, bound = int(np.intersect1d(ids[i], ids[j]).size), ""
            else:
                n, bound = sum(hi - lo + 1 for lo, hi in spans), "up to "
            if n:
                total += n
                lo, hi = min(s[0] for s in spans), max(s[1] for s in spans)
                where.append(f"{a.path} and {b.path} share {bound}{n} train ids in {lo}-{hi}")
    return total, where
