"""`Counters`: merge laws, and the status view of merged counters."""

from __future__ import annotations

from functools import reduce

import numpy as np

from beamstream.counters import MAX_LATENCIES, Counters
from beamstream.status import status_view


def random_counters(seed: int, n: int = 50) -> Counters:
    rng = np.random.default_rng(seed)
    c = Counters()
    for tid in rng.integers(0, 10_000, n).tolist():
        c.seen(tid)
        r = rng.random()
        if r < 0.2:
            c.reject(["wrong shape", "duplicate train id"][int(r * 10) % 2])
        elif r < 0.3:
            c.error("ValueError")
        else:
            c.accept(tid, int(rng.integers(0, 100)), float(rng.random()))
    c.sources[f"worker-{seed}"] = {"received": n, "dropped": {"overload": seed}, "MB_per_s": 1.5}
    if seed % 2:
        c.lose("worker_lost")
    return c


def plain(c: Counters) -> dict:
    d = {k: getattr(c, k) for k in Counters.__dataclass_fields__}
    d["latencies"] = list(c.latencies)
    return d


def test_merge_is_addition_and_union():
    a, b = random_counters(1), random_counters(2)
    m = a.merge(b)
    assert m.received == a.received + b.received == 100
    assert m.processed == a.processed + b.processed and m.frames == a.frames + b.frames
    for reason in set(a.rejected) | set(b.rejected):
        assert m.rejected[reason] == a.rejected.get(reason, 0) + b.rejected.get(reason, 0)
    assert m.errors.get("ValueError", 0) == a.errors.get("ValueError", 0) + b.errors.get(
        "ValueError", 0
    )
    assert m.first_train_id == min(a.first_train_id, b.first_train_id)
    assert m.last_train_id == max(a.last_train_id, b.last_train_id)
    lo = min(a.accepted_ids[0], b.accepted_ids[0])
    assert m.accepted_ids == (lo, max(a.accepted_ids[1], b.accepted_ids[1]))
    assert list(m.latencies) == [*a.latencies, *b.latencies]
    assert m.sources.keys() == {"worker-1", "worker-2"}
    assert m.drops()["overload"] == 3 and m.drops()["worker_lost"] == 1


def test_merge_laws():
    a, b, c = (random_counters(s) for s in (3, 4, 5))
    empty = Counters()
    assert plain(a.merge(b).merge(c)) == plain(a.merge(b.merge(c)))  # associative
    assert plain(empty.merge(a)) == plain(a) == plain(a.merge(empty))  # neutral
    ab, ba = plain(a.merge(b)), plain(b.merge(a))
    for key in ab:  # commutative, but for the order of the latency samples
        if key != "latencies":
            assert ab[key] == ba[key], key
    assert sorted(ab["latencies"]) == sorted(ba["latencies"])
    before = plain(a)
    a.merge(b)
    assert plain(a) == before  # inputs are not modified


def test_pieces_merge_to_the_whole():
    ids = list(range(100, 160))
    whole = Counters()
    pieces = [Counters() for _ in range(4)]
    for i, tid in enumerate(ids):
        for c in (whole, pieces[i // 15]):
            c.seen(tid)
            if tid % 7:
                c.accept(tid, 3, 0.01 * i)
            else:
                c.reject("odd")
    assert plain(reduce(Counters.merge, pieces)) == plain(whole)


def test_latency_samples_are_bounded():
    a, b = Counters(), Counters()
    for i in range(MAX_LATENCIES):
        a.accept(i, 1, 1.0)
        b.accept(i, 1, 2.0)
    m = a.merge(b)
    assert len(m.latencies) == MAX_LATENCIES and set(m.latencies) == {2.0}  # the latest kept


def test_status_view_of_merged_counters():
    m = random_counters(1).merge(random_counters(2))
    s = status_view(m, started=10.0, run_time=2.0, rates=(5.0, 50.0))
    assert s["processed"] == m.processed and s["received"] == 100
    assert s["drops"]["overload"] == 3
    assert {k: v for k, v in s["drops"].items() if k.startswith("rejected:")} == {
        f"rejected:{k}": v for k, v in m.rejected.items()
    }
    assert s["latency_p50_s"] == float(np.percentile(list(m.latencies), 50))
    assert s["MB_per_s"] == 3.0 and s["trains_per_s"] == 5.0
