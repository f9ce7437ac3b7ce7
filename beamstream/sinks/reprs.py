"""HTML summaries of results for notebooks (`Results` of a file, the hub's `Snapshot`)."""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np

from beamstream.processors.base import Result
from beamstream.processors.presentation import coord_long_name

__all__ = ["results_table_html", "human_time"]


def human_time(t: Any) -> str:
    """``2026-12-08 01:18:52 UTC`` for a Unix time (empty for None or NaN)."""
    try:
        v = float(t)
    except (TypeError, ValueError):
        return ""
    if not np.isfinite(v):
        return ""
    return datetime.fromtimestamp(v, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _axes(r: Result) -> str:
    parts = []
    for i, d in enumerate(r.dims):
        unit = r.coord_units.get(d, "")
        name = coord_long_name(r, d) if d == "scan" else d
        parts.append(f"{name}: {np.shape(r.data)[i]}" + (f" [{unit}]" if unit else ""))
    return ", ".join(parts) or "scalar"


def results_table_html(
    title: str,
    results: Mapping[str, Mapping[str, Result]],
    facts: Mapping[str, Any] | None = None,
) -> str:
    """A table of every result (processor, name, axes, units, the main one marked) and facts."""
    rows = []
    for proc, named in results.items():
        for name, r in named.items():
            star = " ★" if r.attrs.get("default_plot") else ""
            rows.append(
                f"<tr><td>{html.escape(proc)}</td><td><b>{html.escape(name)}</b>{star}</td>"
                f"<td>{html.escape(_axes(r))}</td><td>{html.escape(r.units)}</td></tr>"
            )
    fact_rows = "".join(
        f"<tr><th style='text-align:left'>{html.escape(str(k))}</th>"
        f"<td colspan=3>{html.escape(str(v))}</td></tr>"
        for k, v in (facts or {}).items()
    )
    head = "<tr><th>processor</th><th>result</th><th>axes</th><th>units</th></tr>"
    return (
        f"<div><b>{html.escape(title)}</b><table>{fact_rows}{head}{''.join(rows)}</table>"
        "<small>★ the processor's main result</small></div>"
    )
