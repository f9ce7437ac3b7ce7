"""`beamstream demo`: simulators -> pipelines -> live dashboards + HDF5 results, in one command.

Four simulated detectors (a DSSC module in a pump-probe delay scan, a 1 Mpix SAXS detector, an
hRIXS camera, a DECTRIS Eiger in a map scan) stream over ZeroMQ from background processes; one
pipeline per detector (the example configs `config/dssc_pump_probe.toml`,
`config/saxs_qphi.toml`, `config/rixs_centroid.toml`, `config/eiger_map.toml`: frame selection +
scan binning, q-phi integration, photon centroiding, the LiX map-scan workflow on a DECTRIS
stream with the geometry from the stream) receives, processes and publishes to an HDF5 results
file and a Bokeh dashboard.
Everything started is stopped at the end (Ctrl-C, SIGTERM or ``--duration``).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from beamstream.config import PipelineConfig, load_config
from beamstream.executors import LocalExecutor
from beamstream.runner import Runner
from beamstream.sinks.base import Sink
from beamstream.sinks.hub import Hub, describe_source
from beamstream.warmup import warm_up, watch_compiles

__all__ = ["run_demo", "register", "DEMO_PIPELINES"]

#: the example configs, shipped inside the package (``config/`` in a source checkout links here)
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


@dataclass(frozen=True)
class DemoPipeline:
    """One simulator and the pipeline that processes its stream."""

    name: str
    detector: str
    config: str
    rate: float
    sim_args: tuple[str, ...] = ()
    socket: str = "REP"  # the simulator's; the pipeline uses the matching client socket


#: the demo's pipelines: (DSSC pump-probe, SAXS q-phi, RIXS centroiding, Eiger map scan)
DEMO_PIPELINES = (
    DemoPipeline("dssc", "dssc", "dssc_pump_probe.toml", 10.0, ("--frames", "40")),
    DemoPipeline("saxs", "saxs", "saxs_qphi.toml", 5.0),
    DemoPipeline("rixs", "rixs", "rixs_centroid.toml", 5.0, ("--photons", "1000")),
    # a DECTRIS Stream V2 (bslz4) map scan, repeated as new series; geometry from the stream
    DemoPipeline(
        "eiger", "eiger", "eiger_map.toml", 5.0, ("--scan", "10x12", "--series", "0"), "PUSH"
    ),  # fmt: skip
)
_CLIENT_SOCKET = {"REP": "REQ", "PUSH": "PULL", "PUB": "SUB"}


@dataclass
class _Running:
    spec: DemoPipeline
    endpoint: str
    output: Path
    runner: Runner | None = None
    thread: threading.Thread | None = None
    sim: subprocess.Popen | None = None
    source: Any = None
    status: dict[str, Any] = field(default_factory=dict)


def _start_simulator(spec: DemoPipeline, endpoint: str, seed: int) -> subprocess.Popen:
    cmd = [
        sys.executable, "-m", "beamstream", "simulate", "--detector", spec.detector,
        "--endpoint", endpoint, "--socket", spec.socket, "--rate", str(spec.rate),
        "--seed", str(seed), "--quiet", *spec.sim_args,
    ]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)


def _sinks(spec: DemoPipeline, output: Path, dashboard: bool, port: int) -> list[Sink]:
    from beamstream.sinks.hdf5 import HDF5Sink

    sinks: list[Sink] = [HDF5Sink(path=str(output))]
    if dashboard:
        from beamstream.sinks.dashboard import DashboardSink

        sinks.append(
            DashboardSink(
                port=port, title=f"beamstream demo: {spec.name}", out=None, port_fallback=True
            )
        )
    return sinks


def _config(spec: DemoPipeline, endpoint: str) -> PipelineConfig:
    path = CONFIG_DIR / spec.config
    if not path.exists():
        raise FileNotFoundError(f"{path}: example config missing from this installation")
    socket = _CLIENT_SOCKET[spec.socket]
    return load_config(path).with_source(endpoint=endpoint, socket=socket, timeout=None)


def _available(pipelines: tuple[DemoPipeline, ...], out: TextIO) -> list[DemoPipeline]:
    """The pipelines whose libraries are installed (the Eiger one needs ``beamstream[dectris]``)."""
    import importlib.util

    def have(module: str) -> bool:
        try:
            return importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            return False

    dectris = all(have(m) for m in ("cbor2", "dectris.compression", "bitshuffle"))
    if not dectris:
        out.write("eiger pipeline skipped: install beamstream[dectris] for DECTRIS streams\n")
    return [p for p in pipelines if p.detector != "eiger" or dectris]


def _open_source(config: PipelineConfig, hub: Hub) -> tuple[PipelineConfig, Any]:
    """A DECTRIS source, opened early when the geometry comes from its stream (else None)."""
    if config.source.type != "dectris":
        return config, None
    from beamstream.dectris.live import open_with_stream_geometry

    config, source, applied = open_with_stream_geometry(config, timeout=60.0)
    if applied:
        hub.info["applied_geometry"] = applied
    return config, source


def run_demo(
    duration: float | None = None,
    output_dir: str | Path | None = None,
    dashboard: bool = True,
    port: int = 5006,
    seed: int = 0,
    out: TextIO = sys.stdout,
) -> dict[str, dict[str, Any]]:
    """Run the demo until ``duration`` s passed (None: Ctrl-C/SIGTERM); the final statuses."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    outdir = Path(output_dir or Path("out") / f"demo-{stamp}").resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    sockdir = tempfile.mkdtemp(prefix="beamstream-demo-")
    running = [
        _Running(spec, f"ipc://{sockdir}/{spec.name}", outdir / f"{spec.name}.h5")
        for spec in _available(DEMO_PIPELINES, out)
    ]
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        for i, r in enumerate(running):
            r.sim = _start_simulator(r.spec, r.endpoint, seed + i)
            hub = Hub(config_text="")
            config, source = _open_source(_config(r.spec, r.endpoint), hub)
            hub.config_text = config.text
            describe_source(hub, config)
            sinks = _sinks(r.spec, r.output, dashboard, port + i if port else 0)
            executor = LocalExecutor(source) if source is not None else None
            r.runner = Runner(config, executor, sinks, hub=hub, status_out=None)
            r.source = source  # opened here for its geometry: closed at the end
            for s in sinks:
                if hasattr(s, "on_reset"):
                    s.on_reset = r.runner.reset
        with watch_compiles(out):  # says "compiling kernels (first run only)" if it does
            for r in running:
                warm_up(r.runner.pipeline, r.runner.config, out=None)
        for r in running:
            r.thread = threading.Thread(target=_run, args=(r,), name=f"demo {r.spec.name}")
            r.thread.start()
        _announce(running, outdir, duration, out)
        _watch(running, stop, duration, out)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        _shutdown(running)
    _summary(running, out)
    return {r.spec.name: r.status for r in running}


def _run(r: _Running) -> None:
    r.status = r.runner.run()


def _announce(running: list[_Running], outdir: Path, duration: float | None, out: TextIO) -> None:
    deadline = time.monotonic() + 10  # dashboards bind in their own threads
    while time.monotonic() < deadline:
        if all(r.runner.hub.info.get("dashboard_url") or len(r.runner.sinks) == 1 for r in running):
            break
        time.sleep(0.05)
    out.write("beamstream demo: simulators -> pipelines -> dashboards + HDF5\n")
    for r in running:
        urls = [getattr(s, "control_url", None) for s in r.runner.sinks]
        url = next((u for u in urls if u), r.runner.hub.info.get("dashboard_url", "(no dashboard)"))
        out.write(f"  {r.spec.name:<5} {r.spec.config:<22} dashboard {url}\n")
        out.write(f"  {'':<5} {'':<22} results   {r.output}\n")
    how = f"for {duration:g} s" if duration else "until Ctrl-C"
    out.write(f"running {how}; open a dashboard URL in a browser\n")
    out.flush()


def _watch(
    running: list[_Running], stop: threading.Event, duration: float | None, out: TextIO
) -> None:
    t0 = time.monotonic()
    next_line = t0 + 2.0
    while not stop.is_set():
        if duration is not None and time.monotonic() - t0 >= duration:
            return
        if not any(r.thread.is_alive() for r in running):
            return
        for r in running:
            if r.sim.poll() is not None and r.sim.returncode not in (0, None):
                raise RuntimeError(f"the {r.spec.name} simulator exited with {r.sim.returncode}")
        if time.monotonic() >= next_line:
            next_line += 2.0
            parts = []
            for r in running:
                s = r.runner.hub.status() or {"processed": 0, "trains_per_s": 0.0}
                parts.append(f"{r.spec.name} {s['processed']} trains {s['trains_per_s']:.1f}/s")
            out.write(f"[{time.monotonic() - t0:5.0f}s] " + " | ".join(parts) + "\n")
            out.flush()
        stop.wait(0.2)


def _shutdown(running: list[_Running]) -> None:
    for r in running:
        if r.runner is not None:
            r.runner.stop()
    for r in running:
        if r.thread is not None:
            r.thread.join(timeout=60)
        if r.source is not None:
            r.source.close()
    for r in running:
        if r.sim is not None and r.sim.poll() is None:
            r.sim.terminate()
            try:
                r.sim.wait(timeout=10)
            except subprocess.TimeoutExpired:
                r.sim.kill()
                r.sim.wait()


def _summary(running: list[_Running], out: TextIO) -> None:
    out.write("demo finished:\n")
    for r in running:
        s = r.status or {}
        drops = s.get("drops") or "none"
        out.write(
            f"  {r.spec.name:<5} {s.get('processed', 0)} trains, {s.get('frames', 0)} frames; "
            f"drops: {drops}; results in {r.output}\n"
        )
        if r.runner is not None and not s.get("processed"):
            from beamstream.diagnose.watch import explain_runner

            why = explain_runner(r.runner, probe=False).replace("\n", "\n        ")
            out.write(f"        {why}\n")
    out.write("look at a results file with: beamstream report <file.h5> -o report.html\n")
    out.flush()


def _handler(args: argparse.Namespace) -> int:
    statuses = run_demo(args.duration, args.output_dir, not args.no_dashboard, args.port, args.seed)
    return 0 if all(s.get("processed", 0) > 0 for s in statuses.values()) else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="simulators + full pipelines + live dashboards + HDF5 output",
        description="Start the DSSC, SAXS, RIXS and Eiger (DECTRIS stream) simulators in the "
        "background, process each "
        "stream with its example pipeline, serve a live dashboard per pipeline and write HDF5 "
        "results. Runs until Ctrl-C or --duration; stops everything it started.",
    )
    p.add_argument("--duration", type=float, default=None, help="seconds to run (default: Ctrl-C)")
    p.add_argument("--output-dir", default=None, help="where results go (default: out/demo-TIME)")
    p.add_argument("--port", type=int, default=5006, help="first dashboard port (0: free ports)")
    p.add_argument("--no-dashboard", action="store_true", help="no dashboards")
    p.add_argument("--seed", type=int, default=0, help="simulator seed")
    p.set_defaults(func=_handler)
