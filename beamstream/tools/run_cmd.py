"""`beamstream run CONFIG`: run a pipeline on a live stream until stopped."""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path
from typing import Any

from beamstream.config import ConfigError, PipelineConfig, load_config
from beamstream.diagnose.watch import EmptyRunWatch, explain_runner
from beamstream.executors import LocalExecutor
from beamstream.runner import Runner
from beamstream.sinks import make_sink
from beamstream.sinks.base import Sink
from beamstream.sinks.hub import Hub, describe_source
from beamstream.sinks.recorder import RawRecorder
from beamstream.warmup import process_started_at, warm_up, watch_compiles

__all__ = ["run_pipeline", "run_with_diagnosis", "register", "build_sinks"]


def build_sinks(config: PipelineConfig, output: str | None = None) -> list[Sink]:
    """The sinks named in the config (a console summary when none are).

    ``output`` sets the path of the config's hdf5 sink, or adds one writing there. A sink
    that cannot be built raises `ConfigError` naming the file, the sink table and the problem.
    """
    tables = config.sinks or ()
    sinks = []
    for s in tables:
        params = dict(s.params)
        if output is not None and s.type == "hdf5":
            params["path"], output = output, None
        try:
            sinks.append(make_sink(s.type, params))
        except (ValueError, TypeError, OSError, ImportError, AttributeError) as e:
            where = f"{config.path}: sinks[{s.index}] ({s.type})"
            raise ConfigError(f"{where}: {e}") from None
    if output is not None:
        sinks.append(make_sink("hdf5", {"path": output}))
    if not sinks:
        sinks = [make_sink("console", {})]
    return sinks


def run_pipeline(
    config: PipelineConfig,
    trains: int | None = None,
    duration: float | None = None,
    quiet: bool = False,
    output: str | None = None,
    resume: str | None = None,
    dashboard: bool | None = None,
    dashboard_port: int | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    versions: str | None = None,
    control_port: int = 0,
    control_address: str = "127.0.0.1",
    control_token: str | None = None,
) -> dict[str, Any]:
    """Run ``config`` with its sinks; returns the final status.

    ``resume``: a results file whose accumulator states the run continues from (refused when it
    was made with a different pipeline); its hdf5 output defaults to that same file.
    ``dashboard``: True adds the live dashboard (on ``dashboard_port``), False removes it, None
    keeps the config's sinks (see `beamstream.sinks.dashboard.dashboard_sinks`).
    ``workers`` / ``scheduler`` (default: the config's ``[cluster]``; ``workers=0``: none) fan the
    run out over Dask workers (`beamstream.cluster.live.DaskLiveExecutor`).
    ``versions``: a results file whose version log is replayed (each version switched to at the
    train id it started at live); the pipeline comes from the log, the source from ``config``.
    ``control_*``: where the control API is served without a dashboard (with one, it shares
    the dashboard's server); see `beamstream.control.session`.
    """
    from beamstream.control.session import ControlSession

    session = ControlSession.prepare(config, output=output, resume=resume, versions=versions)
    config = session.config
    states = None
    if resume is not None:
        from beamstream.formats.epochs import read_closed_epochs
        from beamstream.formats.results import load_resume
        from beamstream.sinks.hdf5 import HDF5Sink

        previous = load_resume(resume, config)
        states = previous.states
        has_hdf5 = output is not None or any(s.type == "hdf5" for s in config.sinks)
        sinks = build_sinks(config, output if has_hdf5 else resume)
        for sink in sinks:
            if isinstance(sink, HDF5Sink):
                sink.resume_from(
                    previous.segments,
                    previous.records_files_for(sink.path),
                    previous.source.records_rows(),
                    read_closed_epochs(resume),
                )
    else:
        sinks = build_sinks(config, output)
    if dashboard is False:  # no dashboard: without importing Bokeh (a second of start-up)
        sinks = [s for s in sinks if s.name != "dashboard"]
    elif dashboard is not None or dashboard_port is not None:
        from beamstream.sinks.dashboard import dashboard_sinks

        sinks = dashboard_sinks(sinks, dashboard, dashboard_port)
    hub = Hub(config.run.records, config.text)
    hub.info["config_path"] = str(Path(config.path).resolve()) if config.path != "<string>" else ""
    describe_source(hub, config)
    status_out = None if quiet else sys.stderr
    if workers is None and scheduler is None:
        workers, scheduler = config.cluster.workers, config.cluster.scheduler
    recorders = [s for s in sinks if isinstance(s, RawRecorder)]
    sinks = [s for s in sinks if not isinstance(s, RawRecorder)]
    kw: dict[str, Any] = dict(
        hub=hub, states=states, status_out=status_out, control=session.controller
    )
    serve = (control_port, control_address, control_token, status_out)
    if workers or scheduler:
        from beamstream.cluster.dask_backend import DaskBackend
        from beamstream.cluster.live import DaskLiveExecutor, check_fanout

        check_fanout(config)  # before starting a cluster
        if recorders:
            raise ConfigError(
                f"{config.path}: sinks: raw records every train where it is received; with "
                "workers, trains never reach this process (record with a single-process run)"
            )
        with DaskBackend.connect(workers, scheduler) as backend:
            config, relay = _relay(config, hub, len(backend.workers()))
            session.adopt(config)
            try:
                runner = Runner(config, DaskLiveExecutor(backend), sinks, **kw)
                with session.serving(runner, sinks, *serve):
                    return run_with_diagnosis(runner, sinks, trains, duration)
            finally:
                if relay is not None:
                    relay.close()
    config, source = _stream_geometry(config, hub)
    session.adopt(config)
    try:
        runner = Runner(config, LocalExecutor(source, recorders=recorders), sinks, **kw)
        with session.serving(runner, sinks, *serve):
            return run_with_diagnosis(runner, sinks, trains, duration)
    finally:
        if source is not None:
            source.close()  # opened here for its geometry, not by the executor


def _relay(config: PipelineConfig, hub: Hub, workers: int) -> tuple[PipelineConfig, Any]:
    """A DECTRIS source fanned out to ``workers`` through one relay (else None)."""
    if config.source.type != "dectris":
        return config, None
    from beamstream.dectris.cluster import start_relay

    config, relay, applied = start_relay(config, peers=workers)
    if applied:
        hub.info["applied_geometry"] = applied
    return config, relay


def _stream_geometry(config: PipelineConfig, hub: Hub) -> tuple[PipelineConfig, Any]:
    """A DECTRIS source opened early when the geometry comes from its stream (else None)."""
    if config.source.type != "dectris":
        return config, None
    from beamstream.dectris.live import open_with_stream_geometry

    config, source, applied = open_with_stream_geometry(config)
    if applied:
        hub.info["applied_geometry"] = applied  # in the status, hence the file's provenance
    return config, source


def run_with_diagnosis(
    runner: Runner, sinks: list[Sink], trains: int | None = None, duration: float | None = None
) -> dict[str, Any]:
    """Run; a status without a processed train carries the reason as ``explanation``."""
    if any(s.name == "dashboard" for s in sinks):
        from beamstream.sinks.dashboard import connect_reset

        connect_reset(sinks, runner.reset)
    out = runner.status_out or io.StringIO()
    compiled = warm_up(runner.pipeline, runner.config, out=out)
    # kernels the warm-up could not reach (no frame_shape configured) compile on the first
    # trains: said then, once
    with (
        watch_compiles(out),
        EmptyRunWatch(runner, runner.config.run.explain_after, out=out),
    ):
        status = runner.run(trains=trains, duration=duration)
    status["sinks"] = {s.name: h for s in sinks if (h := s.health())}
    status["compile_s"] = compiled
    first = runner.hub.first_view_at
    if first is not None:
        status["first_processed_s"] = first - process_started_at()
    if status["processed"] == 0:
        status["explanation"] = explain_runner(runner)
    return status


def _handler(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if config.source.type == "karabo_matched" and (args.endpoint or args.socket):
        print(
            f"beamstream run: {args.config} has several [source] inputs; --endpoint/--socket "
            "would apply to none of them: set them in its inputs",
            file=sys.stderr,
        )
        return 2
    config = config.with_source(endpoint=args.endpoint, socket=args.socket)
    if args.timeout is not None:
        config = config.with_source(timeout=args.timeout)
    status = run_pipeline(
        config,
        args.trains,
        args.duration,
        args.quiet,
        output=args.output,
        resume=args.resume,
        dashboard=not args.no_dashboard,
        dashboard_port=args.dashboard_port,
        workers=args.workers,
        scheduler=args.scheduler,
        versions=args.versions,
        control_port=args.control_port,
        control_address=args.control_address,
        control_token=args.control_token or os.environ.get("BEAMSTREAM_TOKEN"),
    )
    print(
        f"processed {status['processed']} trains ({status['frames']} frames) in "
        f"{status['run_time_s']:.1f} s; drops: {status['drops'] or 'none'}"
    )
    if status.get("first_processed_s") is not None:
        print(f"first train processed {status['first_processed_s']:.2f} s after start")
    code = report_sink_health(status.get("sinks", {}))
    if "explanation" in status:
        print(f"beamstream run: {status['explanation']}", file=sys.stderr)
        return 1
    return code


def report_sink_health(health: dict[str, dict[str, Any]]) -> int:
    """Print each sink's problems; 1 when a final snapshot could not be written, else 0."""
    code = 0
    for name, h in health.items():
        if h.get("write_errors"):
            print(f"{name}: write errors {h['write_errors']}")
        lost = {k: h[k] for k in ("records_missed", "records_lost") if h.get(k)}
        if lost:
            print(f"{name}: per-train records not written: {lost}")
        if h.get("final_written") is False:
            print(f"{name}: the final results could NOT be written to {h.get('path', '?')}")
            code = 1
        elif h.get("errors"):
            print(f"{name}: {h['errors']} snapshots failed to write")
    return code


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
    p.add_argument(
        "-o", "--output", metavar="PATH", help="HDF5 results file (sets or adds an hdf5 sink)"
    )
    p.add_argument(
        "--resume",
        metavar="FILE",
        help="continue the accumulation stored in this results file (same pipeline only); "
        "results go to --output, or back to FILE",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no live status line")
    p.add_argument("--no-dashboard", action="store_true", help="do not serve the live dashboard")
    p.add_argument(
        "--dashboard-port",
        type=int,
        metavar="PORT",
        help="port of the live dashboard on 127.0.0.1 (default 5006, or a free port when taken; "
        "0: a free port)",
    )
    p.add_argument(
        "--versions",
        metavar="RESULTS",
        help="replay the config versions recorded in this results file, each switched to at the "
        "train it started at (the pipeline comes from the file, the trains from CONFIG's source)",
    )
    p.add_argument(
        "--control-port",
        type=int,
        default=0,
        metavar="PORT",
        help="port of the control API with --no-dashboard (default: a free port; with a "
        "dashboard the API is on the dashboard's port)",
    )
    p.add_argument(
        "--control-address",
        default="127.0.0.1",
        metavar="ADDR",
        help="interface of the control API with --no-dashboard (beyond 127.0.0.1 a token is "
        "required)",
    )
    p.add_argument(
        "--control-token",
        metavar="TOKEN",
        help="token the control API requires (default: $BEAMSTREAM_TOKEN; one is made and "
        "printed when bound beyond 127.0.0.1)",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="fan out over a LocalCluster of N Dask worker processes, each pulling from the "
        "PUSH source (source.socket PULL); 0: one process (default: the config's [cluster])",
    )
    where.add_argument(
        "--scheduler", metavar="ADDR", help="fan out over the Dask cluster at tcp://HOST:PORT"
    )
    p.set_defaults(func=_handler)
