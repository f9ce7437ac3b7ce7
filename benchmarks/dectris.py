"""DECTRIS Stream V2 ingest: beamstream's `DectrisSource` vs the reference decompressor alone.

Eiger2 4M-sized frames (2162 x 2068 uint32; sparse content: Poisson background of 0.05 photons
per pixel plus a few bright rings, masked module gaps at the uint32 maximum), bslz4-compressed
once by the reference compressor (bitshuffle) and pre-encoded as V2 image messages, are pushed
from another process over tcp loopback. In the same run:

(ref) ``dectris.compression.decompress`` alone, on one thread, over the same compressed blobs;
(bs)  ``DectrisSource`` (PULL, CBOR decode, decompression in a pool of 2 threads, trains out),
      frames per second counted at the consumer.

The machine is shared: each beamstream measurement is paired with reference measurements right
before and after it (their harmonic mean), and the median of the paired ratios counts.

``ratio_vs_reference_decompress = bs frames/s / ref frames/s``; target >= 1.3 (decompression
overlapped on 2 cores). Also ``frames_per_s`` and ``compressed_MBps`` (compressed bytes in per
second).

Usage: ``python benchmarks/dectris.py [--json PATH] [--frames N] [--repeats R]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import zmq

_HERE = str(Path(__file__).resolve().parent)
sys.path.insert(0, _HERE)
from _common import Stopwatch, environment, mbps, write_json  # noqa: E402

# this script's name would shadow the `dectris` package (dectris-compression) otherwise
sys.path[:] = [p for p in sys.path if p not in (_HERE, "")]

SHAPE = (2162, 2068)
DISTINCT = 8
TARGET = 1.3


def make_frame(k: int) -> np.ndarray:
    """A sparse, realistic 4M frame: weak background, rings, masked gaps."""
    rng = np.random.default_rng(k)
    y, x = np.ogrid[: SHAPE[0], : SHAPE[1]]
    r = np.hypot(y - 1100.0, x - 1000.0)
    rate = (
        0.05 + 3.0 * np.exp(-0.5 * ((r - 400) / 6) ** 2) + 1.0 * np.exp(-0.5 * ((r - 800) / 9) ** 2)
    )
    frame = rng.poisson(rate).astype(np.uint32)
    frame[:, 1030:1040] = 0xFFFFFFFF  # module gap
    frame[512:550, :] = 0xFFFFFFFF
    return frame


def make_blobs() -> list[Any]:
    """`Compressed` bslz4 blocks of `DISTINCT` frames (the reference compressor)."""
    from beamstream.dectris.codec import compress

    return [compress(make_frame(k), "bslz4") for k in range(DISTINCT)]


def encode_messages(blobs: list[Any], n: int) -> list[bytes]:
    """Start, ``n`` image messages cycling through ``blobs`` (not recompressed), end."""
    import cbor2

    from beamstream.dectris.encode import encode_v2, end_v2, start_v2

    start = start_v2(1, "bench", channels=("threshold_1",),
                     fields={"image_size_x": SHAPE[1], "image_size_y": SHAPE[0],
                             "image_dtype": "uint32"},
                     arm_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))  # fmt: skip
    out = [start]
    for k in range(n):
        b = blobs[k % len(blobs)]
        arr = cbor2.CBORTag(40, [list(SHAPE), cbor2.CBORTag(70, cbor2.CBORTag(
            56500, [b.algorithm, b.modifier, b.data]))])  # fmt: skip
        out.append(encode_v2({"type": "image", "series_id": 1, "series_unique_id": "bench",
                              "image_id": k, "data": {"threshold_1": arr}}))  # fmt: skip
    out.append(end_v2(1, "bench"))
    return out


def sender_main(endpoint: str, n: int, ready: Any) -> None:
    """Child process: encode once, then PUSH as fast as the receiver takes."""
    messages = encode_messages(make_blobs(), n)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.set_hwm(16)
    sock.bind(endpoint)
    ready.set()
    try:
        for m in messages:
            sock.send(m, copy=False)
    finally:
        sock.close(linger=60_000)
        ctx.term()


def reference(blobs: list[Any], n: int, offset: int = 0) -> float:
    """Frames per second of the reference decompressor on one thread."""
    from dectris.compression import decompress

    sw = Stopwatch()
    sw.start()
    for k in range(offset, offset + n):
        b = blobs[k % len(blobs)]
        decompress(b.data, "bslz4", elem_size=4)
    return n / sw.stop()


def settle(src: Any, quiet: float = 0.3) -> None:
    """Wait until the source has filled its queues and stopped working (so that it takes no CPU
    from the reference measurement)."""
    last, since = -1, time.monotonic()
    while time.monotonic() - since < quiet:
        n = src.stats()["images"]
        if n != last:
            last, since = n, time.monotonic()
        time.sleep(0.05)
    time.sleep(0.1)  # the decompressions already submitted finish


def timed_chunk(src: Any, n: int, warmup: int) -> tuple[float, int, float, float]:
    """(frames/s, compressed bytes, seconds, process CPU seconds) of ``n`` trains after
    ``warmup`` (which drain what the source decoded ahead while it was not being read)."""
    sw, nbytes, cpu0 = Stopwatch(), 0, 0.0
    for i in range(n + warmup):
        train = src.get(timeout=60)
        if train is None:
            raise RuntimeError(f"no train {i}: {src.stats()}")
        if i == warmup - 1:
            sw.start()
            cpu0 = time.process_time()
        elif i >= warmup:
            nbytes += train.nbytes
    seconds = sw.stop()
    return (n - 1) / seconds, nbytes, seconds, time.process_time() - cpu0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", metavar="PATH", help="write the results as JSON")
    ap.add_argument("--frames", type=int, default=60, help="frames per measurement (60)")
    ap.add_argument("--repeats", type=int, default=5, help="paired runs; the median counts (5)")
    args = ap.parse_args(argv)
    from beamstream.dectris.source import DectrisSource

    blobs = make_blobs()
    sizes = [b.nbytes for b in blobs]
    print(f"frame {SHAPE[0]} x {SHAPE[1]} uint32, bslz4 {np.mean(sizes) / 1e6:.2f} MB "
          f"(ratio {SHAPE[0] * SHAPE[1] * 4 / np.mean(sizes):.0f}x)")  # fmt: skip
    warmup = 24  # more than the source holds decoded ahead (queue 8 + pipe 12)
    total = args.repeats * (args.frames + warmup) + 1
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    endpoint = f"ipc:///tmp/beamstream-dectris-bench-{mp.current_process().pid}"
    proc = ctx.Process(target=sender_main, args=(endpoint, total, ready), daemon=True)
    proc.start()
    runs = []
    try:
        ready.wait(120)
        reference(blobs, len(blobs))  # warm up the library
        with DectrisSource(endpoint, threads=2, queue=8) as src:
            for r in range(args.repeats):
                # A B A: the reference right before and after, so load changes pair up
                settle(src)
                before = reference(blobs, args.frames // 2, r)
                fps, nbytes, seconds, cpu = timed_chunk(src, args.frames, warmup)
                settle(src)
                after = reference(blobs, args.frames // 2, r + 1)
                ref = 2 / (1 / before + 1 / after)
                runs.append(
                    {
                        "reference_frames_per_s": ref,
                        "frames_per_s": fps,
                        "compressed_MBps": mbps(nbytes, seconds),
                        "ratio": fps / ref,
                        "cores_used": cpu / seconds,
                        "cpu_ms_per_frame": 1e3 * cpu / (args.frames - 1),
                    }
                )
                print(f"run {r + 1}: reference {ref:7.1f} frames/s | beamstream {fps:7.1f} "
                      f"frames/s, {runs[-1]['compressed_MBps']:6.1f} MB/s compressed, "
                      f"{cpu / seconds:.2f} cores | ratio {fps / ref:.2f}")  # fmt: skip
            dropped = src.stats()["dropped_total"]
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.kill()
    if dropped:
        raise RuntimeError(f"{dropped} messages dropped")
    ratio = statistics.median(x["ratio"] for x in runs)
    result = {
        "benchmark": "dectris",
        "frame_shape": list(SHAPE),
        "compressed_bytes_mean": float(np.mean(sizes)),
        "frames": args.frames,
        "runs": runs,
        "ratio_vs_reference_decompress": ratio,
        "frames_per_s": statistics.median(x["frames_per_s"] for x in runs),
        "compressed_MBps": statistics.median(x["compressed_MBps"] for x in runs),
        "reference_frames_per_s": statistics.median(x["reference_frames_per_s"] for x in runs),
        "target": TARGET,
        # how much CPU the run got (a shared machine may leave it less than the 2 cores that
        # the overlap needs) and what a frame costs in all threads of this process
        "cores_used": statistics.median(x["cores_used"] for x in runs),
        "cpu_ms_per_frame": statistics.median(x["cpu_ms_per_frame"] for x in runs),
        "environment": environment(),
    }
    print(
        f"ratio_vs_reference_decompress {ratio:.2f} (target >= {TARGET}); frames_per_s "
        f"{result['frames_per_s']:.1f}; compressed_MBps {result['compressed_MBps']:.1f}; "
        f"cores_used {result['cores_used']:.2f}; cpu_ms_per_frame "
        f"{result['cpu_ms_per_frame']:.2f} (reference "
        f"{1e3 / result['reference_frames_per_s']:.2f} wall)"
    )
    if args.json:
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
