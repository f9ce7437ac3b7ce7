"""`beamstream reprocess CONFIG PATH`: an archived run through a pipeline, in chunks, on Dask."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from beamstream.config import PipelineConfig, load_config

__all__ = ["register", "run_reprocess"]


def run_reprocess(
    config: PipelineConfig,
    path: str,
    workers: int | None = None,
    scheduler: str | None = None,
    trains_per_chunk: int = 100,
    output: str | None = None,
    quiet: bool = False,
    dashboard: bool | None = None,
    dashboard_port: int | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Reprocess ``path`` with the config's sinks (``output``: its HDF5 file); the final status.

    ``workers`` / ``scheduler`` (default: the config's ``[cluster]``) run the chunks on Dask;
    with neither, they run in this process (same chunking, same result). ``options`` go to
    `beamstream.cluster.offline.reprocess` (``format``, ``trains``, ``retries``, ...).
    """
    from beamstream.cluster.offline import reprocess
    from beamstream.sinks.hub import Hub
    from beamstream.tools.run_cmd import build_sinks

    if workers is None and scheduler is None:
        workers, scheduler = config.cluster.workers, config.cluster.scheduler
    sinks = build_sinks(config, output)
    if dashboard is not None or dashboard_port is not None:
        from beamstream.sinks.dashboard import dashboard_sinks

        sinks = dashboard_sinks(sinks, dashboard, dashboard_port)
    hub = Hub(config.run.records, config.text)
    hub.info["config_path"] = str(Path(config.path).resolve()) if config.path != "<string>" else ""
    hub.info["reprocessed"] = str(Path(path).resolve())
    status_out = None if quiet else sys.stderr
    kw = dict(trains_per_chunk=trains_per_chunk, sinks=sinks, hub=hub, status_out=status_out)
    if not workers and not scheduler:
        return reprocess(config, path, **kw, **options)
    from beamstream.cluster.dask_backend import DaskBackend

    with DaskBackend.connect(workers, scheduler) as backend:
        return reprocess(config, path, backend=backend, **kw, **options)


def _handler(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    options: dict[str, Any] = {"format": args.format, "trains": args.trains}
    if args.stack_modules:
        options["stack_modules"] = True
    status = run_reprocess(
        config,
        args.path,
        args.workers,
        args.scheduler,
        args.trains_per_chunk,
        args.output,
        args.quiet,
        dashboard=True if args.dashboard or args.dashboard_port is not None else None,
        dashboard_port=args.dashboard_port,
        retries=args.retries,
        **options,
    )
    print(
        f"processed {status['processed']} trains ({status['frames']} frames) in "
        f"{status['chunks_done']} of {status['chunks_total']} chunks, "
        f"{status['run_time_s']:.1f} s; drops: {status['drops'] or 'none'}"
    )
    return 0 if status["chunks_done"] == status["chunks_total"] else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "reprocess",
        help="run a pipeline over an archived run, in chunks, optionally on Dask workers",
        description="Process the trains of PATH (any replay format) with the pipeline of CONFIG "
        "in chunks of --trains-per-chunk trains: on a LocalCluster of --workers processes, on "
        "the Dask cluster at --scheduler, or in this process. Chunk results are merged in a "
        "tree fixed by chunk index (the result does not depend on which chunk finishes first); "
        "snapshots of the results so far go to the sinks while it runs.",
    )
    p.add_argument("config", help="pipeline TOML file")
    p.add_argument("path", help="archived run: raw recording, EuXFEL run, LiX file, TIFF folder")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N", help="LocalCluster of N processes")
    where.add_argument("--scheduler", metavar="ADDR", help="Dask scheduler, tcp://HOST:PORT")
    p.add_argument("--trains-per-chunk", type=int, default=100, metavar="K", help="default 100")
    p.add_argument("-o", "--output", metavar="PATH", help="HDF5 results file")
    p.add_argument("--trains", metavar="START:STOP:STEP", help="train positions (or id:...)")
    p.add_argument(
        "--format", help="a registered reader: raw, euxfel, lix, tiff (default: detected)"
    )
    p.add_argument("--stack-modules", action="store_true", help="euxfel: stack modules")
    p.add_argument(
        "--retries", type=int, default=2, metavar="R", help="retries of a failed chunk (2)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no status line")
    p.add_argument("--dashboard", action="store_true", help="serve the live dashboard")
    p.add_argument("--dashboard-port", type=int, metavar="PORT", help="dashboard port")
    p.set_defaults(func=_handler)
