"""`beamstream merge A.h5 B.h5 ... -o C.h5`: merge results files of one pipeline."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def _handler(args: argparse.Namespace) -> int:
    from beamstream.formats.results import merge_results

    rf = merge_results(args.inputs, args.output, allow_overlap=args.allow_overlap, trust=args.trust)
    total = sum(s.get("processed", 0) for s in rf.segments)
    print(f"merged {len(args.inputs)} files ({total} trains) into {args.output}")
    if rf.overlap_trains:
        print(f"warning: {rf.overlap_trains} trains were in more than one file: counted twice")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "merge",
        help="merge results files of the same pipeline",
        description="Merge the accumulator states stored in results files made with the same "
        "pipeline (exactly: sums and counts add) and write the re-finalized results, with the "
        "provenance of every input. Files of different pipelines and files sharing train ids "
        "are refused, and so are processors that are not registered plug-ins unless --trust "
        "is given.",
    )
    p.add_argument("inputs", nargs="+", metavar="FILE", help="results files (two or more)")
    p.add_argument("-o", "--output", required=True, metavar="PATH", help="merged results file")
    p.add_argument(
        "--allow-overlap",
        action="store_true",
        help="merge files that share train ids anyway (says how many trains are counted twice)",
    )
    p.add_argument(
        "--trust",
        action="store_true",
        help="also import processors named by a dotted path (package.module:Class) in the "
        "files' stored configs; by default only registered plug-ins are used",
    )
    p.set_defaults(func=_handler)
