"""What keeps the dashboard cheap: the update budget, one-pass display kernels (equal to the
plain numpy answers), thinned per-train records and auto-ranges that stay in the browser."""

from __future__ import annotations

import time

import numpy as np
import pytest
from bokeh.document import Document
from bokeh.models import DataRange1d

from beamstream.processors.base import Result
from beamstream.sinks.dashboard import prep, roi
from beamstream.sinks.dashboard.app import DashboardApp
from beamstream.sinks.dashboard.budget import UpdateBudget
from beamstream.sinks.dashboard.live import RecordsPanel
from beamstream.sinks.hub import Hub, Snapshot


# -- the update budget --------------------------------------------------------------------------
def test_budget_paces_saturated_updates_by_their_steady_cost():
    b = UpdateBudget(share=0.01, serialization_factor=2.0, max_interval=5.0)
    b.spent(100.0, 0.010, busy=0.95)
    assert b.interval() == pytest.approx(2.0)  # 2 x 10 ms per 1 % of a core
    assert not b.allows(101.9) and b.allows(102.0)
    b.spent(200.0, 0.500, busy=0.95, one_off=True)  # a panel build does not set the pace
    assert b.interval() == pytest.approx(2.0) and b.allows(202.0)
    b.spent(300.0, 0.030, busy=0.95)  # the mean, not the median: the budget is CPU time
    assert b.interval() == pytest.approx(4.0)


def test_budget_counts_the_page_once_it_answers():
    b = UpdateBudget(share=0.05, max_interval=10.0)
    b.spent(0.0, 0.010, busy=1.0)
    assert b.cost() == pytest.approx(0.020)  # before any answer: the callback twice
    b.answered(0.190)  # a slow page (e.g. sharing the processing machine): fewer updates
    assert b.cost() == pytest.approx(0.200) and b.interval() == pytest.approx(4.0)
    b.answered(-1.0)  # clock oddities never give a negative cost
    assert b.cost() == pytest.approx(0.010 + 0.095)


def test_budget_never_freezes_the_display_and_is_free_when_idle():
    b = UpdateBudget(max_interval=2.0)
    b.spent(10.0, 1.0, busy=1.0)  # however expensive, at least one update per max_interval
    assert b.interval() == 2.0 and b.allows(12.0) and not b.allows(11.9)
    b.spent(12.0, 1.0, busy=0.3)  # beamline rates: every periodic callback updates
    assert b.allows(12.0)


@pytest.mark.parametrize("kw", [{"share": 0.0}, {"share": 1.5}, {"max_interval": 0.0}])
def test_budget_rejects_nonsense(kw):
    with pytest.raises(ValueError):
        UpdateBudget(**kw)


def test_app_accounts_only_updates_it_sent():
    hub = Hub()
    app = DashboardApp(hub)
    app.build(Document())
    hub.busy = 1.0
    app.acked, app.sent = 3, 4  # still waiting for the browser: skipped, not accounted
    n = len(app.budget.costs)
    app.update()
    assert (
        app.skipped == 1 and len(app.budget.costs) == n and app.budget.allows(time.perf_counter())
    )


# -- one-pass display kernels against numpy -----------------------------------------------------
def numpy_roi_sum(img: np.ndarray, r: tuple[int, int, int, int] | None) -> float:
    a = img.astype(np.float64)
    if r is not None:
        a = a[max(r[2], 0) : max(r[3], 0), max(r[0], 0) : max(r[1], 0)]
    return float(np.nansum(a)) if np.isfinite(a).any() else np.nan


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16, np.int32])
@pytest.mark.parametrize("r", [None, (3, 40, 2, 20), (-5, 500, 10, 11), (30, 30, 0, 5)])
def test_roi_sums_equal_numpy(dtype, r):
    rng = np.random.default_rng(1)
    stack = (rng.random((4, 24, 48)) * 1000).astype(dtype)
    if stack.dtype.kind == "f":
        stack[1, ::3, ::5] = np.nan
        stack[2] = np.nan  # an empty bin
    got = roi.roi_sums(stack, r)
    want = [numpy_roi_sum(img, r) for img in stack]
    np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)


def test_roi_sums_stack_modules_along_y():
    mods = np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5)  # (bin, module, y, x)
    got = roi.roi_sums(mods, (1, 3, 2, 9), image_ndim=3)
    want = [mods[i].reshape(12, 5)[2:9, 1:3].sum() for i in range(2)]
    assert got.tolist() == want


def test_one_weight_per_bin_reduction_equals_numpy():
    rng = np.random.default_rng(2)
    data = rng.normal(5, 2, (6, 16, 20))
    data[1, 3:5] = np.nan  # NaN pixels
    data[4] = np.nan  # a bin without data (weight 0)
    w = np.array([1.0, 3.0, 0.0, 2.0, 0.0, 5.0])
    res = Result("mean", data, ("scan", "y", "x"), {"scan": np.arange(6.0)})
    weights = Result("counts", w, ("scan",), {"scan": np.arange(6.0)})
    got, _ = prep.reduce_scan(res, None, weights)
    wb = np.where(np.isfinite(data), w[:, None, None], 0.0)
    want = np.nansum(wb * data, axis=0) / wb.sum(axis=0)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    data[:, 0, 0] = np.nan  # no finite value in any bin: NaN
    assert np.isnan(prep.reduce_scan(res, None, weights)[0][0, 0])


def test_choosing_the_slot_first_gives_the_same_image():
    rng = np.random.default_rng(3)
    c = {"scan": np.arange(4.0), "slot": np.array(["pumped", "unpumped"])}
    mean = Result("mean", rng.random((4, 2, 6, 8)), ("scan", "slot", "y", "x"), c)
    counts = Result("counts", np.array([[1, 2], [0, 0], [3, 1], [2, 2]]), ("scan", "slot"), c)
    whole, _ = prep.reduce_scan(mean, None, counts)
    chosen = prep.select_groups(mean, ("slot",), "unpumped")
    w = prep.select_groups(counts, ("slot",), "unpumped")
    assert chosen.dims == ("scan", "y", "x") and w.dims == ("scan",)
    first, _ = prep.reduce_scan(chosen, None, w)
    np.testing.assert_allclose(first, whole[1], rtol=1e-12)  # whole: (slot, y, x)
    unknown = prep.select_groups(mean, ("slot",), "nope")  # as `pick`: the first slot
    np.testing.assert_array_equal(unknown.data, mean.data[:, 0])


# -- records and ranges -------------------------------------------------------------------------
def test_records_are_thinned_to_the_newest_every_kth():
    panel = RecordsPanel(history=100)
    panel.add([{"train_id": i, "frames": 2 * i} for i in range(10)])  # starts the table
    panel.add([{"train_id": i, "frames": 2 * i} for i in range(10, 1010)], max_rows=50)
    ids = list(panel.columns["train_id"])
    assert len(ids) == 60 and ids[-1] == 1009  # 50 of the 1000, the newest included
    assert np.all(np.diff(ids[10:]) == 20)
    panel.add([{"train_id": 2000, "frames": 1}], max_rows=50)  # slow rates: every train
    assert panel.columns["train_id"][-1] == 2000 and len(panel.columns["train_id"]) == 61


def test_records_drop_their_markers_when_the_window_is_crowded():
    panel = RecordsPanel(history=1000)
    panel.add([{"train_id": i, "frames": 1} for i in range(RecordsPanel.MARKS_MAX)])
    assert all(m.visible for m in panel.marks) and len(panel.marks) == 3
    panel.add([{"train_id": RecordsPanel.MARKS_MAX, "frames": 1}])
    assert not any(m.visible for m in panel.marks)


def test_plot_ranges_are_not_sent_back_by_the_browser():
    hub = Hub()
    app = DashboardApp(hub)
    doc = Document()
    app.build(doc)
    c = {"scan": np.arange(2.0), "slot": np.array(["pumped", "unpumped"])}
    results = {
        "mean": Result("mean", np.ones((2, 2, 4, 5)), ("scan", "slot", "y", "x"), c),
        "counts": Result("counts", np.ones((2, 2)), ("scan", "slot"), c),
    }
    hub.publish(Snapshot(1, time.time(), {"binner": results}, {}, {"processed": 2}))
    n = len(app.budget.costs)
    app.update()  # builds the result panels: a one-off cost, kept out of the pace
    assert "binner.mean" in app.panels and len(app.budget.costs) == n
    ranges = [m for m in doc.models if isinstance(m, DataRange1d)]
    assert len(ranges) >= 4 and not any(r.syncable for r in ranges)
    app._acked("data", None, {"update": [app.sent]})  # the page drew the build: not a cost
    assert not app.budget.page_costs
    hub.publish(Snapshot(2, time.time(), {"binner": results}, {}, {"processed": 4}))
    app.update()
    assert len(app.budget.costs) == n + 1
    app._acked("data", None, {"update": [app.sent]})  # a steady update's answer counts
    assert len(app.budget.page_costs) == 1 and app.acked == app.sent
