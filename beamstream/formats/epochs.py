"""Closed epochs: the accumulation before each reset, kept in the results file.

A reset (the dashboard's button, `Runner.reset`) starts a new epoch from empty states. The last
snapshot of the closed epoch is kept, so its data never leaves the results: each one is written
under ``/entry/epochs/epoch_<n>`` with its results (``NXdata``), its accumulator states (so it
can be merged or resumed from) and the run's counts at its end (``summary_json``): an epoch
holds the trains after the previous epoch's ``last_train_id`` up to its own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import h5py

from beamstream.formats.h5layout import (
    from_json,
    h5name,
    iter_results,
    open_h5,
    read_result,
    read_tree,
    to_json,
    write_result,
)

__all__ = ["write_closed_epochs", "read_closed_epochs", "epoch_summary"]

GROUP = "epochs"


def epoch_summary(snapshot: Any) -> dict[str, Any]:
    """What is kept of a closed epoch: its number, counts, train ids, results and states."""
    status = snapshot.status
    return {
        "epoch": int(snapshot.epoch),
        "time": float(snapshot.time),
        "processed": int(status.get("processed", 0)),  # of the run, up to the epoch's end
        "first_train_id": status.get("first_train_id"),  # of the run
        "last_train_id": status.get("last_train_id"),  # the epoch's last train
        "results": snapshot.results,
        "states": snapshot.states,
    }


def write_closed_epochs(
    entry: h5py.Group,
    epochs: Sequence[Mapping[str, Any]],
    write_state: Any,
    compression: Mapping[str, Any] | None = None,
) -> None:
    """Write each closed epoch (`epoch_summary`) under ``entry/epochs``."""
    if not epochs:
        return
    top = entry.create_group(GROUP, track_order=True)
    top.attrs["NX_class"] = "NXcollection"
    for ep in epochs:
        g = top.create_group(f"epoch_{ep['epoch']}", track_order=True)
        g.attrs["NX_class"] = "NXcollection"
        g.attrs["summary_json"] = to_json(
            {k: v for k, v in ep.items() if k not in ("results", "states")}
        )
        res = g.create_group("results", track_order=True)
        for proc, named in ep["results"].items():
            pg = res.create_group(h5name(proc), track_order=True)
            pg.attrs["NX_class"] = "NXprocess"
            for r in named.values():
                write_result(pg, r, compression)
        st = g.create_group("states", track_order=True)
        for name, state in ep["states"].items():
            write_state(st, name, state)


def read_closed_epochs(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The closed epochs of a results file: summaries with their ``results`` and ``states``
    (as trees), as `write_closed_epochs` takes them (a resumed run carries them on)."""
    out = []
    with open_h5(path) as f:
        top = f.get(f"entry/{GROUP}")
        if top is None:
            return []
        for g in top.values():
            ep = dict(from_json(g.attrs["summary_json"]))
            ep["states"] = {name: read_tree(sg) for name, sg in g["states"].items()}
            ep["results"] = {
                proc: {r.name: r for r in (read_result(x) for x in iter_results(pg))}
                for proc, pg in g["results"].items()
            }
            out.append(ep)
    return out
