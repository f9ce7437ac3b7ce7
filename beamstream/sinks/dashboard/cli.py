"""`beamstream report RESULTS.h5 [-o report.html]`: a standalone HTML page of a results file."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def _handler(args: argparse.Namespace) -> int:
    from beamstream.sinks.dashboard.report import write_report

    path = write_report(args.results, args.output, inline=not args.cdn, title=args.title)
    print(f"report written to {path}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        help="write a standalone HTML report of a results file",
        description="Write the dashboard's panels for the results (and per-train records) of "
        "an HDF5 results file as one HTML page. BokehJS is inlined, so the page opens offline.",
    )
    p.add_argument("results", help="HDF5 results file (NeXus NXdata groups)")
    p.add_argument("-o", "--output", metavar="HTML", help="output file (default: RESULTS.html)")
    p.add_argument("--title", help="page title")
    p.add_argument("--cdn", action="store_true", help="load BokehJS from the CDN (smaller file)")
    p.set_defaults(func=_handler)
