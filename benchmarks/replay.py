"""Replay throughput: ``beamstream replay --rate max`` vs ``karabo-bridge-serve-files``.

Both stream the same trains (a European XFEL mock run of DSSC modules filled with random data, and
a beamstream raw recording made from it) over PUSH to a PULL consumer in this process, which
counts message bytes from the first to the last train. Prints MB/s of each and their ratio
(target: beamstream >= 1.5x). ``--json PATH`` writes ``beamstream_MBps``, ``serve_files_MBps``,
``ratio``.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_json  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_run(folder: Path, modules: int, trains: int, frames: int) -> None:
    """A mock EuXFEL run (extra-data's writers) with random detector data."""
    from extra_data.tests.mockdata import write_file
    from extra_data.tests.mockdata.detectors import DSSCModule
    from extra_data.tests.mockdata.xgm import XGM

    rng = np.random.default_rng(0)
    for m in range(modules):
        path = folder / f"RAW-R0001-DSSC{m:02d}-S00000.h5"
        src = f"SCS_DET_DSSC1M-1/DET/{m}CH0"
        write_file(
            str(path), [DSSCModule(src, frames_per_train=frames)], ntrains=trains, chunksize=32
        )
        with h5py.File(path, "r+") as f:
            ds = f[f"INSTRUMENT/{src}:xtdf/image/data"]
            for i in range(0, ds.shape[0], frames):
                ds[i : i + frames] = rng.integers(0, 4096, (frames, *ds.shape[1:]), np.uint16)
    write_file(
        str(folder / "RAW-R0001-DA01-S00000.h5"),
        [XGM("SA3_XTD10_XGM/XGM/DOOCS")],
        ntrains=trains,
        chunksize=32,
    )


def make_recording(run: Path, out: Path) -> None:
    """Record the run's trains as they arrive on the wire (a beamstream raw recording)."""
    import warnings

    from beamstream.formats.raw import RawWriter
    from beamstream.replay import open_reader
    from beamstream.streamer.protocol import decode_train, encode_train

    warnings.simplefilter("ignore")
    writer = RawWriter(out)
    batch = []
    for train in open_reader(run):
        batch.append(decode_train(encode_train(train)).copy())
        if len(batch) == 8:
            writer.write(batch)
            batch = []
    writer.write(batch)
    writer.close()


def consume(argv: list[str], endpoint: str, n: int, timeout: float = 120.0) -> float:
    """Start a server, pull ``n`` trains from it; MB/s between the first and the last train."""
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.PULL)
    sock.set_hwm(1)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        got, nbytes, t_first = 0, 0, None
        deadline = time.monotonic() + timeout
        while got < n:
            if not sock.poll(1000):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"{argv[0]}: only {got} of {n} trains arrived")
                continue
            frames = sock.recv_multipart(copy=False)
            if t_first is None:
                t_first = time.monotonic()  # the first train is not counted
            else:
                nbytes += sum(len(f) for f in frames)
            got += 1
        elapsed = time.monotonic() - t_first
    finally:
        sock.close(0)
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    return nbytes / 1e6 / elapsed


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the numbers to this file")
    ap.add_argument("--modules", type=int, default=4)
    ap.add_argument("--trains", type=int, default=48)
    ap.add_argument("--frames", type=int, default=32)
    args = ap.parse_args(argv)
    bindir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory(prefix="bs-bench-") as tmp:
        run = Path(tmp) / "r0001"
        run.mkdir()
        make_run(run, args.modules, args.trains, args.frames)
        raw = Path(tmp) / "raw.h5"
        make_recording(run, raw)
        mb_train = args.modules * args.frames * 128 * 512 * 2 / 1e6
        print(
            f"{args.trains} trains of {mb_train:.1f} MB ({args.modules} DSSC modules x "
            f"{args.frames} frames)"
        )
        ep = f"tcp://127.0.0.1:{free_port()}"
        serve = [str(bindir / "karabo-bridge-serve-files"), str(run), ep, "-z", "PUSH"]
        ref = consume(serve, ep, args.trains)
        ep = f"tcp://127.0.0.1:{free_port()}"
        ours = [
            sys.executable,
            "-m",
            "beamstream.replay.cli",
            str(raw),
            "--endpoint",
            ep,
            "--socket",
            "PUSH",
            "--rate",
            "max",
            "-q",
        ]
        bs = consume(ours, ep, args.trains)
    out = {
        "beamstream_MBps": round(bs, 1),
        "serve_files_MBps": round(ref, 1),
        "ratio": round(bs / ref, 2),
    }
    print(f"beamstream replay:          {bs:8.1f} MB/s")
    print(f"karabo-bridge-serve-files:  {ref:8.1f} MB/s")
    print(f"ratio: {bs / ref:.2f}x (target >= 1.5x)")
    if args.json:
        write_json(args.json, out)
    return out


if __name__ == "__main__":
    main()
