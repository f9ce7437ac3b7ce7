"""`beamstream fit-curvature` straight from a run's records (the hit lists of every train)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from beamstream.processors.rixs.cli import fit_source, main
from beamstream.processors.rixs.curvature import fit_curvature_hits


def concatenated_hits(records_file) -> tuple[np.ndarray, np.ndarray]:
    """The hit lists of every train, concatenated by hand through the records index."""
    with h5py.File(records_file) as f:
        out = []
        for c in ("x", "y"):
            values = f[f"records/rixs.hits.{c}"][()]
            index = f[f"records_index/rixs.hits.{c}"][()]
            out.append(np.concatenate([values[s : s + n] for s, n in index]))
    return out[0], out[1]


def test_fit_on_records_equals_fit_on_concatenated_hits(example_outputs, capsys):
    results = example_outputs["rixs_centroid.toml"]
    records = results.with_name("rixs_centroid.records.h5")
    x, y = concatenated_hits(records)
    assert len(x) > 500
    expected = fit_curvature_hits(x, y)
    for source in (str(records), str(results), f"{results}:rixs.hits"):
        fit = fit_source(source)
        assert (fit.a, fit.b, fit.offset) == (expected.a, expected.b, expected.offset), source
    assert main(["fit-curvature", str(results)]) == 0
    assert f"curvature = [{expected.a!r}, {expected.b!r}]" in capsys.readouterr().out


def test_records_without_hits_say_so(example_outputs, capsys):
    assert main(["fit-curvature", str(example_outputs["saxs_qphi.toml"])]) == 2
    err = capsys.readouterr().err
    assert "expected one hit list in the records" in err and "found none" in err
    with pytest.raises(ValueError, match="found none"):
        fit_source(f"{example_outputs['rixs_centroid.toml']}:qphi.hits")
