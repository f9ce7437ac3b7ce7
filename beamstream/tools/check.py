"""`beamstream check CONFIG`: validate a pipeline file and print the resolved pipeline."""

from __future__ import annotations

import argparse

from beamstream.config import PipelineConfig, load_config
from beamstream.processors.pipeline import Pipeline
from beamstream.sources import source_class
from beamstream.tools.run_cmd import build_sinks

__all__ = ["describe_pipeline", "register"]


def describe_pipeline(config: PipelineConfig) -> str:
    """Build the pipeline and its sinks (checking every parameter, as `run` does) and describe
    it, one step a line."""
    notes = []
    if config.source.type == "dectris":
        from beamstream.dectris.geometry import needs_stream_geometry, with_placeholder_geometry

        if needs_stream_geometry(config):
            config = with_placeholder_geometry(config)
            notes.append("geometry    from the stream's series start (checked here with a "
                         "placeholder geometry)")  # fmt: skip
    pipeline = Pipeline(config)
    source_class(config)  # the source type checks its own parameters
    build_sinks(config)  # exactly as `run` builds them: the same errors, located
    src = config.source
    lines = [f"{config.path}: version {config.version}"]
    if src.type == "karabo_bridge":
        lines.append(
            f"source      {src.socket} {src.endpoint} (protocol {src.protocol}, queue {src.queue}, "
            f"policy {src.policy})"
        )
    else:
        lines.append(f"source      {src.type} {dict(src.options)}")
    if src.detector:
        lines.append(f"detector    {src.detector}[{src.key}] layout {list(src.layout or ['auto'])}")
    lines += notes
    if config.scan:
        lines.append(f"scan        {config.scan.source}[{config.scan.key}]")
    lines += pipeline.describe()
    lines += [f"sink        {s.type} {dict(s.params)}" for s in config.sinks]
    lines.append(f"run         snapshot every {config.run.interval:g} s")
    return "\n".join(lines)


def _handler(args: argparse.Namespace) -> int:
    for path in args.config:
        print(describe_pipeline(load_config(path)))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "check",
        help="validate pipeline config files and print the resolved pipelines",
        description="Load each TOML pipeline file, build every processor (reading masks, "
        "geometry files, ...) and print the resolved pipeline. Exit status 1 on the first error.",
    )
    p.add_argument("config", nargs="+", help="pipeline TOML file(s)")
    p.set_defaults(func=_handler)
