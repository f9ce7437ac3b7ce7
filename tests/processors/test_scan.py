"""ScanAxis binning rules and the ScanValue transform."""

from __future__ import annotations

import numpy as np
import pytest

from beamstream.processors.base import Rejected, TrainView
from beamstream.processors.params import ParamError
from beamstream.processors.scan import ScanAxis, ScanValue
from beamstream.streamer.train import Train

SRC = "SCS_ILH_LAS/MOTOR/DELAY"


def view_with(value=None, key: str = "actualPosition", tid: int = 1) -> TrainView:
    data = {} if value is None and key == "" else {SRC: {key: value}}
    return TrainView(Train(tid, data=data))


def reason(transform, view) -> str:
    with pytest.raises(Rejected) as info:
        transform(view)
    return info.value.reason


# -- ScanAxis ---------------------------------------------------------------------------------
def test_no_source_gives_key_zero_for_every_value():
    axis = ScanAxis(None)
    assert axis.mode == "none"
    assert [axis.key(v) for v in (1.0, -3.5, None, float("nan"))] == [0.0] * 4


def test_edges_key_is_bin_centre_and_right_edge_inclusive():
    axis = ScanAxis("s", edges=[0.0, 1.0, 3.0, 4.0])
    assert axis.mode == "edges"
    assert axis.key(0.0) == 0.5
    assert axis.key(0.999) == 0.5
    assert axis.key(1.0) == 2.0
    assert axis.key(2.5) == 2.0
    assert axis.key(4.0) == 3.5  # the last bin includes its right edge, as numpy.histogram
    for outside in (-1e-9, 4.0000001, -100.0):
        with pytest.raises(Rejected, match="scan value out of range"):
            axis.key(outside)
    np.testing.assert_array_equal(axis.attrs()["scan_edges"], [0.0, 1.0, 3.0, 4.0])


def test_stepsize_rounds_to_grid_half_to_even():
    axis = ScanAxis("s", stepsize=0.1)
    assert axis.key(0.26) == 0.1 * 3
    assert axis.key(0.24) == 0.1 * 2
    assert axis.key(-0.26) == 0.1 * -3
    whole = ScanAxis("s", stepsize=1.0)
    assert (whole.key(2.5), whole.key(3.5), whole.key(-0.4)) == (2.0, 4.0, 0.0)
    assert np.signbit(whole.key(-0.4)) is np.False_  # -0.0 folded into 0.0
    assert axis.attrs()["scan_stepsize"] == 0.1


def test_distinct_values_are_their_own_key():
    axis = ScanAxis("s")
    assert axis.mode == "distinct"
    assert axis.key(1.25) == 1.25
    assert axis.key(np.float32(0.1)) == float(np.float32(0.1))
    assert not np.signbit(axis.key(-0.0))
    np.testing.assert_array_equal(axis.coords([3.0, 1.5]), [3.0, 1.5])


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), None])
def test_non_finite_values_are_rejected_as_nan(bad):
    with pytest.raises(Rejected, match="scan value NaN"):
        ScanAxis("s", stepsize=0.5).key(bad)


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"edges": [0, 1], "stepsize": 1.0}, "stepsize"),
        ({"edges": [1, 0]}, "edges"),
        ({"edges": [0]}, "edges"),
        ({"edges": [0, float("nan")]}, "edges"),
        ({"edges": "0,1"}, "edges"),
        ({"edges": [0, True]}, "edges"),
        ({"stepsize": 0}, "stepsize"),
        ({"stepsize": -1.0}, "stepsize"),
        ({"units": 3}, "units"),
    ],
)
def test_axis_parameter_errors(kwargs, key):
    with pytest.raises(ParamError) as info:
        ScanAxis("s", **kwargs)
    assert info.value.key == key


# -- ScanValue --------------------------------------------------------------------------------
def test_scan_value_sets_value_and_key_with_either_spelling():
    t = ScanValue(SRC, "actualPosition", stepsize=0.5, units="mm")
    v = t(view_with(1.3, key="actualPosition.value"))
    assert (v.scan_value, v.scan_key) == (1.3, 1.5)
    v = ScanValue(SRC, "actualPosition.value")(view_with(2, key="actualPosition"))
    assert (v.scan_value, v.scan_key) == (2.0, 2.0)
    assert t.axis.units == "mm"


def test_scan_value_without_source_bins_everything_at_zero():
    t = ScanValue()
    v = t(TrainView(Train(5)))
    assert (v.scan_key, v.scan_value) == (0.0, None)


def test_one_element_array_is_a_scalar():
    v = ScanValue(SRC, "actualPosition")(view_with(np.array([4.25])))
    assert v.scan_key == 4.25


def test_per_pulse_array_needs_reduce():
    values = np.array([1.0, 2.0, 6.0])
    assert reason(ScanValue(SRC, "actualPosition"), view_with(values)) == "scan value not scalar"
    assert ScanValue(SRC, "actualPosition", reduce="mean")(view_with(values)).scan_key == 3.0
    assert ScanValue(SRC, "actualPosition", reduce="first")(view_with(values)).scan_key == 1.0


def test_missing_nan_none_and_out_of_range_rejections():
    t = ScanValue(SRC, "actualPosition", edges=[0, 10])
    assert reason(t, TrainView(Train(1))) == "scan value missing"
    assert reason(t, view_with(1.0, key="otherKey")) == "scan value missing"
    assert reason(t, view_with(np.zeros(0))) == "scan value missing"
    assert reason(t, view_with(float("nan"))) == "scan value NaN"
    assert reason(t, view_with(np.array([np.inf]))) == "scan value NaN"
    assert reason(t, TrainView(Train(1, data={SRC: {"actualPosition": None}}))) == "scan value NaN"
    assert reason(t, view_with(10.5)) == "scan value out of range"
    assert reason(t, view_with("3")) == "scan value not a number"
    assert reason(t, view_with(True)) == "scan value not a number"
    assert t(view_with(10.0)).scan_key == 5.0


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"source": SRC}, "key"),
        ({"source": "", "key": "x"}, "source"),
        ({"key": "x"}, "source"),
        ({"source": SRC, "key": "x", "reduce": "median"}, "reduce"),
        ({"source": SRC, "key": "x", "edges": [2, 1]}, "edges"),
    ],
)
def test_scan_value_parameter_errors(kwargs, key):
    with pytest.raises(ParamError) as info:
        ScanValue(**kwargs)
    assert info.value.key == key
