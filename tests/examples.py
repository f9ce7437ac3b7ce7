"""Results files of every ``config/`` example, each run against its simulator over a real socket.

`run_example(name, directory, endpoint)` writes ``<directory>/<stem>.h5`` (and its records file)
with the hdf5 sink; the simulators are kept small so that all examples run in seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from beamstream.config import load_config
from beamstream.runner import Runner
from beamstream.simulate import (
    DsscSimulator,
    RixsSimulator,
    SaxsSimulator,
    SimulatedDetector,
    simulate,
)
from beamstream.sinks.hdf5 import HDF5Sink
from beamstream.sinks.hub import Hub

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"

#: per example: the simulator and the number of trains to stream
EXAMPLES: dict[str, Callable[[], tuple[SimulatedDetector, int]]] = {
    "dssc_pump_probe.toml": lambda: (
        DsscSimulator(seed=5, frames=8, delays=(-1.0, 0.0, 0.5), trains_per_step=2),
        6,
    ),
    "minimal.toml": lambda: (DsscSimulator(seed=1, frames=4, trains_per_step=2), 4),
    "rixs_centroid.toml": lambda: (RixsSimulator(seed=4, frames=1, photons=500), 3),
    "saxs_qphi.toml": lambda: (SaxsSimulator(seed=2, frames=2), 3),
    "scan_map.toml": lambda: (SaxsSimulator(seed=4, scan=(4, 4)), 16),
}


def run_example(name: str, directory: Path, endpoint: str, timeout: float = 120) -> Path:
    """Stream ``config/<name>``'s simulator into its pipeline with an hdf5 sink; the file path."""
    sim, trains = EXAMPLES[name]()
    out = Path(directory) / f"{Path(name).stem}.h5"
    stop = threading.Event()
    server = threading.Thread(
        target=simulate,
        kwargs=dict(
            detector=sim, endpoint=endpoint, socket="REP", rate=0, trains=trains, stop_event=stop
        ),
        daemon=True,
    )
    server.start()
    config = load_config(CONFIG_DIR / name).with_source(endpoint=endpoint)
    hub = Hub(config.run.records, config.text)  # as `beamstream run` makes it
    hub.info["config_path"] = str(CONFIG_DIR / name)
    runner = Runner(config, None, [HDF5Sink(str(out), fsync=False)], hub=hub, status_out=None)
    try:
        status = runner.run(trains=trains, duration=timeout)
    finally:
        stop.set()
        server.join(10)
    if status["processed"] != trains:
        raise RuntimeError(f"{name}: processed {status['processed']} of {trains} trains")
    return out
