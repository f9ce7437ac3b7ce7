"""The `beamstream` command: thin argument parsing around library functions.

Each subcommand lives next to the code it drives and exposes ``register(subparsers)``, which adds
its parser and sets ``func`` to a handler ``handler(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from beamstream import __version__

#: modules providing subcommands, in the order of ``beamstream --help``
SUBCOMMANDS = (
    "beamstream.tools.demo",
    "beamstream.tools.run_cmd",
    "beamstream.tools.check",
    "beamstream.tools.reprocess_cmd",
    "beamstream.simulate.cli",
    "beamstream.tools.monitor",
    "beamstream.control.ctl_cmd",
    "beamstream.replay.cli",
    "beamstream.tools.merge_cmd",
    "beamstream.tools.keys_cmd",
    "beamstream.sinks.dashboard.cli",
    "beamstream.processors.rixs.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="beamstream",
        description="Live processing of X-ray detector streams (Karabo Bridge protocol).",
    )
    parser.add_argument("--version", action="version", version=f"beamstream {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name and name.startswith(e.name):  # optional part not present in this build
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``beamstream`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return _exit_status(int(args.func(args) or 0))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError) as e:  # configuration and I/O problems: a clear message, no trace
        if args.verbose:
            raise
        print(f"beamstream {args.command}: error: {e}", file=sys.stderr)
        return 1


def _exit_status(code: int) -> int:
    """``code``; but when a file had to be abandoned after a write error (a full disk), exit
    at once: HDF5's clean-up at exit would retry its failed writes and can crash the process.
    Every other file is closed by then."""
    appendfile = sys.modules.get("beamstream.formats.appendfile")
    broken = appendfile.broken_files() if appendfile is not None else []
    if broken:
        logging.getLogger(__name__).warning(
            "left after write errors (their complete rows are readable): %s", ", ".join(broken)
        )
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
