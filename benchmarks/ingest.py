"""Ingest throughput: beamstream's `Receiver` against raw pyzmq and `karabo_bridge.Client`.

One sender that is never the bottleneck (a raw pyzmq PUSH socket in its own process, sending one
16 MiB train pre-encoded once with beamstream's `encode_train`, zero-copy, over tcp loopback)
feeds three receivers in turn:

(a) raw pyzmq ``recv_multipart(copy=False)`` (the reference: no decoding at all),
(b) beamstream ``Receiver(socket="PULL")`` delivering decoded `Train` s,
(c) ``karabo_bridge.Client(sock="PULL")``.

Each is measured twice: pure receive, and with a consumer that reads every byte of each train's
image (``image.sum()``), where receiving can overlap processing. Targets: pure receive
(b) >= 0.9 x (a); with the consumer (b) >= 1.3 x (c).

Usage: ``python benchmarks/ingest.py [--json PATH] [--trains N] [--repeats R]``
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Stopwatch, environment, mbps, write_json  # noqa: E402

SOURCE = "SPB_DET_AGIPD1M-1/DET/0CH0:xtdf"
KEY = "image.data"
SHAPE = (128, 128, 512)  # frames x ss x fs, uint16: 16 MiB
TARGET_VS_RAW = 0.9
TARGET_VS_KB = 1.3


def make_frames() -> list[Any]:
    """The benchmark train, encoded once (protocol 2.2) with beamstream's `encode_train`."""
    from beamstream.streamer import Train, encode_train

    rng = np.random.default_rng(0)
    image = rng.integers(0, 4096, SHAPE, dtype=np.uint16)
    train = Train(
        10_000_000_000,
        time.time(),
        {
            SOURCE: {
                KEY: image,
                "image.cellId": np.arange(SHAPE[0], dtype=np.uint16),
                "image.pulseId": np.arange(SHAPE[0], dtype=np.uint64),
                "header.pulseCount": SHAPE[0],
            }
        },
        dims={SOURCE: {KEY: ("frame", "ss", "fs")}},
    )
    return encode_train(train)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sender_main(endpoint: str, count: int) -> None:
    """Child process: send ``count`` copies of the pre-encoded train as fast as PUSH allows."""
    frames = make_frames()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.set_hwm(4)
    sock.bind(endpoint)
    try:
        for _ in range(count):
            sock.send_multipart(frames, copy=False)
    finally:
        sock.close(linger=30_000)  # deliver what is queued, then go
        ctx.term()


# -- receivers: each returns (seconds for `n` trains after `warmup`, bytes per train) -----------
def consume(image: np.ndarray) -> int:
    """Read every byte of the image once."""
    return int(image.sum())


def recv_raw(endpoint: str, n: int, warmup: int, consumer: bool) -> tuple[float, int]:
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.PULL)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 30_000)
    sock.connect(endpoint)
    sw, size = Stopwatch(), 0
    try:
        for i in range(n + warmup):
            frames = sock.recv_multipart(copy=False)
            if consumer:
                consume(np.frombuffer(frames[3].buffer, np.uint16))
            if i == warmup - 1:
                sw.start()
                size = sum(len(f) for f in frames)
        return sw.stop(), size
    finally:
        sock.close(linger=0)


def recv_beamstream(endpoint: str, n: int, warmup: int, consumer: bool) -> tuple[float, int]:
    from beamstream.streamer import Receiver

    sw, size = Stopwatch(), 0
    with Receiver(endpoint, socket="PULL", timeout=30) as receiver:
        for i in range(n + warmup):
            train = receiver.get(timeout=30)
            if train is None:
                raise RuntimeError(f"beamstream Receiver: no train after {i}")
            if consumer:
                consume(train.data[SOURCE][KEY])
            if i == warmup - 1:
                sw.start()
                size = train.nbytes
            del train
        return sw.stop(), size


def recv_karabo_bridge(endpoint: str, n: int, warmup: int, consumer: bool) -> tuple[float, int]:
    from karabo_bridge import Client

    sw, size = Stopwatch(), 0
    with Client(endpoint, sock="PULL", timeout=30) as client:
        for i in range(n + warmup):
            data, _meta = client.next()
            if consumer:
                consume(data[SOURCE][KEY])
            if i == warmup - 1:
                sw.start()
                size = data[SOURCE][KEY].nbytes
            del data
        return sw.stop(), size


RECEIVERS: dict[str, Callable[[str, int, int, bool], tuple[float, int]]] = {
    "raw": recv_raw,
    "beamstream": recv_beamstream,
    "karabo_bridge": recv_karabo_bridge,
}


def measure(name: str, n: int, warmup: int, consumer: bool) -> float:
    """One run: a fresh sender process and one receiver; MB/s over ``n`` trains."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    ctx = mp.get_context("spawn")
    proc = ctx.Process(target=sender_main, args=(endpoint, n + warmup), daemon=True)
    proc.start()
    try:
        seconds, size = RECEIVERS[name](endpoint, n, warmup, consumer)
    finally:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=5)
    nbytes = n * size
    if name == "karabo_bridge":  # the client reports the image only; count the whole message
        nbytes = n * message_size()
    return mbps(nbytes, seconds)


_SIZE: list[int] = []


def message_size() -> int:
    """Bytes in one encoded benchmark message (all frames)."""
    if not _SIZE:
        _SIZE.append(sum(memoryview(f).nbytes for f in make_frames()))
    return _SIZE[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", metavar="PATH", help="write the results as JSON")
    ap.add_argument("--trains", type=int, default=100, help="trains per measurement (default 100)")
    ap.add_argument("--warmup", type=int, default=10, help="trains before the clock starts")
    ap.add_argument("--repeats", type=int, default=5, help="runs per case; the median counts")
    args = ap.parse_args(argv)
    if args.trains < 1 or args.warmup < 1 or args.repeats < 1:
        ap.error("--trains, --warmup and --repeats must be positive")

    cases = [
        ("raw_MBps", "raw", False),
        ("beamstream_MBps", "beamstream", False),
        ("karabo_bridge_MBps", "karabo_bridge", False),
        ("consumer_beamstream_MBps", "beamstream", True),
        ("consumer_karabo_bridge_MBps", "karabo_bridge", True),
    ]
    size = message_size()
    print(
        f"ingest: {args.trains} trains of {size / 2**20:.1f} MiB per run ({SHAPE} uint16), "
        f"tcp loopback, {args.repeats} runs per case (median)",
        flush=True,
    )
    runs: dict[str, list[float]] = {key: [] for key, _, _ in cases}
    t_start = time.monotonic()
    load0 = os.getloadavg()[0]
    for rep in range(args.repeats):  # interleaved, so that drifts hit every case alike
        for key, name, consumer in cases:
            runs[key].append(measure(name, args.trains, args.warmup, consumer))
            print(f"  run {rep + 1}: {key:28s} {runs[key][-1]:9.1f} MB/s", flush=True)
    result: dict[str, Any] = {key: statistics.median(v) for key, v in runs.items()}
    result["ratio_vs_raw"] = result["beamstream_MBps"] / result["raw_MBps"]
    result["ratio_vs_karabo_bridge"] = (
        result["consumer_beamstream_MBps"] / result["consumer_karabo_bridge_MBps"]
    )
    elapsed = time.monotonic() - t_start

    print()
    print("pure receive")
    print(f"  (a) raw pyzmq recv_multipart     {result['raw_MBps']:9.1f} MB/s")
    print(f"  (b) beamstream Receiver          {result['beamstream_MBps']:9.1f} MB/s")
    print(f"  (c) karabo_bridge.Client         {result['karabo_bridge_MBps']:9.1f} MB/s")
    print("with a consumer reading every image byte")
    print(f"  (b) beamstream Receiver          {result['consumer_beamstream_MBps']:9.1f} MB/s")
    print(f"  (c) karabo_bridge.Client         {result['consumer_karabo_bridge_MBps']:9.1f} MB/s")
    ok_raw = result["ratio_vs_raw"] >= TARGET_VS_RAW
    ok_kb = result["ratio_vs_karabo_bridge"] >= TARGET_VS_KB
    print(
        f"ratio_vs_raw           {result['ratio_vs_raw']:.3f}  (target >= {TARGET_VS_RAW}: "
        f"{'met' if ok_raw else 'MISSED'})"
    )
    print(
        f"ratio_vs_karabo_bridge {result['ratio_vs_karabo_bridge']:.3f}  "
        f"(target >= {TARGET_VS_KB}, with consumer: {'met' if ok_kb else 'MISSED'})"
    )
    print(f"({elapsed:.0f} s; load average before/after: {load0:.1f}/{os.getloadavg()[0]:.1f})")
    if args.json:
        out = dict(result)
        out["runs"] = runs
        out["trains"] = args.trains
        out["message_bytes"] = size
        out["environment"] = environment()
        write_json(args.json, out)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
