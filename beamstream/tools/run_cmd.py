"""`beamstream run CONFIG`: run a pipeline on a live stream until stopped."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from beamstream.config import PipelineConfig, load_config
from beamstream.runner import Runner
from beamstream.sinks import make_sink
from beamstream.sinks.base import Sink

__all__ = ["run_pipeline", "register"]


def build_sinks(config: PipelineConfig) -> list[Sink]:
    """The sinks named in the config (a console summary when none are)."""
    tables = config.sinks or ()
    sinks = [make_sink(s.type, dict(s.params)) for s in tables]
    if not sinks:
        sinks = [make_sink("console", {})]
    return sinks


def run_pipeline(
    config: PipelineConfig,
    trains: int | None = None,
    duration: float | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Run ``config`` with its sinks; returns the final status."""
    runner = Runner(config, build_sinks(config), status_out=None if quiet else sys.stderr)
    return runner.run(trains=trains, duration=duration)


def _handler(args: argparse.Namespace) -> int:
    config = load_config(args.config).with_source(endpoint=args.endpoint, socket=args.socket)
    if args.timeout is not None:
        config = config.with_source(timeout=args.timeout)
    status = run_pipeline(config, args.trains, args.duration, args.quiet)
    print(
        f"processed {status['processed']} trains ({status['frames']} frames) in "
        f"{status['run_time_s']:.1f} s; drops: {status['drops'] or 'none'}"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run",
        help="run a pipeline on a live stream",
        description="Receive trains, process them with the pipeline of CONFIG and publish a "
        "snapshot of the results every interval to the sinks. Ctrl-C or SIGTERM stops the run "
        "cleanly with a final snapshot. Options override the config's [source].",
    )
    p.add_argument("config", help="pipeline TOML file")
    p.add_argument("--endpoint", help="override source.endpoint")
    p.add_argument("--socket", choices=["REQ", "SUB", "PULL"], type=str.upper)
    p.add_argument("--trains", type=int, help="stop after N trains received")
    p.add_argument("--duration", type=float, help="stop after S seconds")
    p.add_argument("--timeout", type=float, help="stop after S seconds without a train")
    p.add_argument("-q", "--quiet", action="store_true", help="no live status line")
    p.set_defaults(func=_handler)
