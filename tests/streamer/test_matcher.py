"""`TrainMatcher`: complete, late, missing, out of order, duplicate, offset, flooding trains."""

from __future__ import annotations

import numpy as np
import pytest

from beamstream.streamer.matcher import TrainMatcher
from beamstream.streamer.train import Train

INPUTS = ("det0", "det1", "xgm")


def part(name: str, tid: int) -> Train:
    """The part of train ``tid`` that input ``name`` delivers (one source named after it)."""
    return Train(tid, 1000.0 + tid, {f"SRC/{name}": {"v": np.full(3, tid), "tid": tid}})


def feed(m: TrainMatcher, events: list[tuple[str, int, float]]) -> list[Train]:
    out = []
    for name, tid, now in events:
        out.extend(m.add(name, part(name, tid), now))
        out.extend(m.expire(now))
    return out


def counts(m: TrainMatcher, name: str) -> dict[str, int]:
    c = m.stats()["inputs"][name]
    return {k: v for k, v in c.items() if v}


def test_complete_trains_in_order() -> None:
    m = TrainMatcher(INPUTS, deadline=0.5)
    events = [(n, tid, 0.01 * tid) for tid in range(1, 6) for n in INPUTS]
    out = feed(m, events)
    assert [t.train_id for t in out] == [1, 2, 3, 4, 5]
    for t in out:
        assert set(t.data) == {f"SRC/{n}" for n in INPUTS}
        assert t.missing == ()
        assert t.timestamp == 1000.0 + t.train_id
        for src in t.data:
            assert t.data[src]["tid"] == t.train_id
    for n in INPUTS:
        assert counts(m, n) == {"received": 5, "matched": 5}
    assert m.pending == 0 and m.stats()["complete"] == 5


@pytest.mark.parametrize("policy", ["drop", "accept"])
def test_missing_input_and_late_part(policy: str) -> None:
    m = TrainMatcher(INPUTS, deadline=0.1, incomplete=policy)
    out = feed(m, [("det0", 7, 0.0), ("xgm", 7, 0.01)])
    assert out == []
    out = m.expire(0.2)  # det1 never came in time
    if policy == "drop":
        assert out == []
        assert m.stats()["incomplete_dropped_deadline"] == 1
    else:
        (t,) = out
        assert t.train_id == 7 and set(t.data) == {"SRC/det0", "SRC/xgm"}
        assert t.missing == ("det1",)  # det1 has not been seen yet: no source names known
    assert feed(m, [("det1", 7, 0.3)]) == []  # too late: train 7 is finished
    assert counts(m, "det1") == {"received": 1, "late": 1, "missing": 1}
    assert counts(m, "det0").get("matched", 0) == (1 if policy == "accept" else 0)
    # once det1 was seen, its source names are reported missing too
    feed(m, [("det0", 8, 0.4), ("xgm", 8, 0.4)])
    out = m.expire(1.0)
    if policy == "accept":
        assert out[0].missing == ("det1", "SRC/det1")
    assert counts(m, "det1")["missing"] == 2


def test_out_of_order_within_window() -> None:
    m = TrainMatcher(INPUTS, deadline=1.0)
    events = [("det0", t, 0.0) for t in (1, 2, 3)]
    events += [("det1", t, 0.1) for t in (3, 1, 2)]
    events += [("xgm", t, 0.2) for t in (2, 3, 1)]
    out = feed(m, events)
    assert sorted(t.train_id for t in out) == [1, 2, 3]
    assert [t.train_id for t in out] == [2, 3, 1]  # delivered as they complete
    for n in INPUTS:
        assert counts(m, n) == {"received": 3, "matched": 3}


def test_duplicates_counted_not_delivered_twice() -> None:
    m = TrainMatcher(INPUTS, deadline=1.0)
    out = feed(m, [("det0", 1, 0.0), ("det0", 1, 0.01)])  # duplicate while waiting
    out += feed(m, [("det1", 1, 0.02), ("xgm", 1, 0.03)])
    out += feed(m, [("xgm", 1, 0.04)])  # duplicate after delivery
    assert [t.train_id for t in out] == [1]
    assert counts(m, "det0") == {"received": 2, "matched": 1, "duplicate": 1}
    assert counts(m, "xgm") == {"received": 2, "matched": 1, "duplicate": 1}
    assert counts(m, "det1") == {"received": 1, "matched": 1}


def test_constant_offset_detected_and_corrected() -> None:
    m = TrainMatcher(("a", "b"), deadline=0.05, correct_offsets=True, offset_after=10)
    out = []
    for k in range(40):
        tid, now = 100 + k, 0.1 * k
        out += m.add("a", part("a", tid), now)
        out += m.add("b", part("b", tid + 5000), now + 0.01)  # b counts 5000 ahead
    out += m.flush()
    ok = [t.train_id for t in out]
    assert m.stats()["inputs"]["b"]["offset"] == 5000
    # detected at b's 10th unmatched part, which is then matched; every later train matches
    assert ok == list(range(109, 140)), ok
    assert counts(m, "a") == {"received": 40, "matched": 31}
    assert counts(m, "b") == {
        "received": 40,
        "matched": 31,
        "missing": 9,
        "ahead": 9,
        "offset": 5000,
    }


def test_offset_detected_but_not_applied_by_default() -> None:
    m = TrainMatcher(("a", "b"), deadline=0.05, offset_after=10)
    for k in range(30):
        m.add("a", part("a", 100 + k), 0.1 * k)
        m.add("b", part("b", 100 + k - 3), 0.1 * k + 0.01)
        m.expire(0.1 * k + 0.09)
    m.flush()
    assert m.stats()["inputs"]["b"]["offset"] == -3
    assert counts(m, "b").get("matched", 0) == 0


def test_configured_offset() -> None:
    m = TrainMatcher(("a", "b"), deadline=0.05, offsets={"b": 7})
    out = []
    for k in range(5):
        out += m.add("a", part("a", k), 0.1 * k)
        out += m.add("b", part("b", k + 7), 0.1 * k)
    assert [t.train_id for t in out] == [0, 1, 2, 3, 4]


def test_flooding_input_is_bounded_and_others_go_on() -> None:
    m = TrainMatcher(INPUTS, deadline=0.5, max_pending=8, incomplete="accept")
    out = []
    for k in range(50):
        now = 0.1 * k
        out += m.add("det0", part("det0", k), now)
        out += m.add("det1", part("det1", k), now)
        for j in range(20):  # xgm floods train ids far ahead
            out += m.add("xgm", part("xgm", 10**6 + 20 * k + j), now)
        assert m.pending <= 8
    out += m.flush()
    assert [t.train_id for t in out] == list(range(50))
    assert all(t.missing == ("xgm", "SRC/xgm") for t in out)
    c = counts(m, "xgm")
    assert c["received"] == 1000 and c["ahead"] == 1000 - c.get("matched", 0)
    assert counts(m, "det0") == {"received": 50, "matched": 50}


def test_eviction_keeps_the_most_complete() -> None:
    m = TrainMatcher(("a", "b"), deadline=10.0, max_pending=2, incomplete="drop", max_ahead=100)
    m.add("a", part("a", 1), 0.0)
    m.add("b", part("b", 50), 0.0)  # a lone part of b
    m.add("a", part("a", 2), 0.0)  # evicts the least complete, oldest: 1
    out = m.add("b", part("b", 2), 0.0)
    assert [t.train_id for t in out] == [2]
    assert counts(m, "b")["missing"] == 1 and m.pending == 1


def test_bad_parameters() -> None:
    with pytest.raises(ValueError, match="distinct"):
        TrainMatcher(("a", "a"))
    with pytest.raises(ValueError, match="incomplete"):
        TrainMatcher(("a",), incomplete="maybe")
    with pytest.raises(ValueError, match="offsets: unknown inputs"):
        TrainMatcher(("a",), offsets={"z": 1})
