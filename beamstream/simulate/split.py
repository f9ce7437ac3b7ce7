"""Serve a `MegapixelSimulator` from several endpoints, as the facility's devices do.

The module sources are split over ``split`` endpoints (contiguous groups), and the XGM and delay
sources come from one more endpoint. `Delivery` adds what real sources do: per-source jitter,
out-of-order delivery, missing modules and a train-id offset of the slow-data endpoint. Which
modules are missing from which train is a deterministic function of ``(seed, train_id)``
(`Delivery.missing_modules`), so tests know the answer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from beamstream.simulate._common import source_metadata
from beamstream.simulate.megapixel import MegapixelSimulator
from beamstream.streamer.train import Train

__all__ = ["Delivery", "plan_endpoints", "simulate_split"]

_SEND_POLL = 0.2


@dataclass(frozen=True)
class Delivery:
    """How the simulated sources misbehave.

    Attributes
    ----------
    jitter_ms
        Each part waits a random 0..jitter_ms before it is sent.
    out_of_order
        Probability that an endpoint sends a train after the next one (pairs swapped).
    missing
        Module numbers never sent.
    missing_rate
        Probability that a module is left out of a train.
    offset
        Added to the train ids of the slow-data (XGM, delay) endpoint.
    """

    jitter_ms: float = 0.0
    out_of_order: float = 0.0
    missing: tuple[int, ...] = ()
    missing_rate: float = 0.0
    offset: int = 0

    def missing_modules(self, sim: MegapixelSimulator, train_id: int) -> set[int]:
        """The module numbers left out of a train."""
        out = set(self.missing)
        if self.missing_rate > 0:
            draw = sim.rng(train_id, 300).random(len(sim.module_numbers))
            out |= {
                m for m, d in zip(sim.module_numbers, draw, strict=True) if d < self.missing_rate
            }
        return out


def plan_endpoints(endpoint: str, sim: MegapixelSimulator, split: int) -> list[tuple[str, list]]:
    """``[(endpoint, sources)]``: ``split`` module groups then the slow sources.

    ``split`` 0 sends everything from ``endpoint``. Otherwise tcp ports count up from the given
    one, and ipc paths get ``-0``, ``-1``, ... appended.
    """
    if split < 0 or split > len(sim.sources):
        raise ValueError(f"split: expected 0 to {len(sim.sources)}, got {split!r}")
    if split == 0:
        return [(endpoint, [*sim.sources, *sim.slow_sources])]
    groups = [list(g) for g in np.array_split(np.array(sim.sources, dtype=object), split)]
    groups.append(list(sim.slow_sources))
    return [(_nth_endpoint(endpoint, i), g) for i, g in enumerate(groups)]


def _nth_endpoint(endpoint: str, i: int) -> str:
    if endpoint.startswith("tcp://"):
        host, port = endpoint.rsplit(":", 1)
        return f"{host}:{int(port) + i}"
    return f"{endpoint}-{i}"


def simulate_split(
    sim: MegapixelSimulator,
    plan: Sequence[tuple[str, Sequence[str]]],
    *,
    socket: str = "REP",
    rate: float = 10.0,
    trains: int | None = None,
    delivery: Delivery = Delivery(),
    stop_event: threading.Event | None = None,
    ready: Callable[[list[str]], None] | None = None,
) -> dict[str, Any]:
    """Send the trains of ``sim`` from every endpoint of ``plan`` in parallel threads.

    Returns
    -------
    dict
        ``endpoints``, ``sent`` (parts per endpoint), ``elapsed``, ``interrupted``.
    """
    import zmq

    from beamstream.streamer.sender import Sender

    stop = stop_event or threading.Event()
    # a private context: terminating it at the end waits until ZeroMQ let go of every message
    # (arrays go out zero-copy; freeing one still queued would crash the process at exit)
    ctx = zmq.Context()
    senders = [Sender(ep, socket=socket, context=ctx) for ep, _ in plan]
    bound = [s.endpoint for s in senders]
    if ready is not None:
        ready(bound)
    sent = [0] * len(plan)
    t_start = time.monotonic()
    slow = set(sim.slow_sources)
    # lockstep: no endpoint sends step n before every endpoint has generated it (the devices of
    # a facility share one clock; a slow generator must not let the others run ahead)
    generated = [0] * len(plan)
    step = threading.Condition()

    def wait_for_all(k: int, n: int) -> bool:
        with step:
            generated[k] = n + 1
            step.notify_all()
            while min(generated) < n + 1:
                if stop.is_set():
                    return False
                step.wait(_SEND_POLL)
        return True

    def run(k: int) -> None:
        sources = list(plan[k][1])
        offset = delivery.offset if slow & set(sources) and len(plan) > 1 else 0
        rng = np.random.default_rng([sim.seed, 400 + k])
        order = _order(trains, delivery.out_of_order, rng)
        for n, idx in enumerate(order):
            if stop.is_set():
                return
            tid = sim.first_train_id + idx
            gone = delivery.missing_modules(sim, tid)
            keep = [s for s in sources if _module_of(sim, s) not in gone]
            data, dims = sim.part(tid, keep)
            if not wait_for_all(k, n):
                return
            due = max(t_start + n / rate if rate > 0 else 0.0, time.monotonic())
            wait = due - time.monotonic() + rng.uniform(0, delivery.jitter_ms) / 1000.0
            if wait > 0 and stop.wait(wait):
                return
            ts = time.time()
            meta = {s: source_metadata(s, tid + offset, ts) for s in data}
            train = Train(tid + offset, ts, data, meta, dims)
            while not senders[k].send(train, timeout=_SEND_POLL):
                if stop.is_set():
                    return
            sent[k] += 1

    threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(len(plan))]
    interrupted = False
    try:
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(timeout=0.2)
    except KeyboardInterrupt:
        interrupted = True
        stop.set()
        for t in threads:
            t.join(timeout=5)
    for s in senders:
        s.flush_and_close(timeout=1.0)
    ctx.term()
    return {
        "detector": sim.detector,
        "endpoints": bound,
        "sent": sent,
        "elapsed": time.monotonic() - t_start,
        "interrupted": interrupted or stop.is_set(),
    }


def _module_of(sim: MegapixelSimulator, source: str) -> int | None:
    try:
        return sim.module_numbers[sim.sources.index(source)]
    except ValueError:
        return None


def _order(trains: int | None, swap: float, rng: np.random.Generator):  # noqa: ANN202
    """Train indices 0, 1, 2, ... with neighbouring pairs swapped with probability ``swap``."""
    i = 0
    while trains is None or i < trains:
        if swap > 0 and rng.random() < swap and (trains is None or i + 1 < trains):
            yield i + 1
            yield i
            i += 2
        else:
            yield i
            i += 1
