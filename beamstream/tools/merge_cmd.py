"""`beamstream merge A.h5 B.h5 ... -o C.h5`: merge results files of one pipeline."""

from __future__ import annotations

import argparse

__all__ = ["register", "untrusted_processors"]


def untrusted_processors(inputs: list[str]) -> dict[str, list[str]]:
    """Per input file, the processor types in its stored config that are not registered
    plug-ins (dotted ``package.module:Class`` paths): merging would import and run them."""
    from beamstream.config import parse_config
    from beamstream.formats.results import read_results_file
    from beamstream.processors.registry import available

    registered = set(available()) | set(available().values())
    out: dict[str, list[str]] = {}
    for path in inputs:
        rf = read_results_file(path)
        config = parse_config(rf.config_text, f"{path} (stored config)")
        types = [p.type for p in config.processors if p.type not in registered]
        if types:
            out[str(path)] = types
    return out


def _handler(args: argparse.Namespace) -> int:
    from beamstream.formats.results import merge_results

    if not args.trust:
        untrusted = untrusted_processors(args.inputs)
        if untrusted:
            listed = "; ".join(f"{p}: {', '.join(t)}" for p, t in untrusted.items())
            raise ValueError(
                f"refusing to import processors that are not registered plug-ins ({listed}): "
                "merging runs the code named in the files' stored configs; pass --trust if you "
                "trust where these files come from"
            )
    rf = merge_results(args.inputs, args.output)
    total = sum(s.get("processed", 0) for s in rf.segments)
    print(f"merged {len(args.inputs)} files ({total} trains) into {args.output}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "merge",
        help="merge results files of the same pipeline",
        description="Merge the accumulator states stored in results files made with the same "
        "pipeline (exactly: sums and counts add) and write the re-finalized results, with the "
        "provenance of every input. Files of different pipelines are refused, and so are "
        "processors that are not registered plug-ins unless --trust is given.",
    )
    p.add_argument("inputs", nargs="+", metavar="FILE", help="results files (two or more)")
    p.add_argument("-o", "--output", required=True, metavar="PATH", help="merged results file")
    p.add_argument(
        "--trust",
        action="store_true",
        help="also import processors named by a dotted path (package.module:Class) in the "
        "files' stored configs; by default only registered plug-ins are used",
    )
    p.set_defaults(func=_handler)
