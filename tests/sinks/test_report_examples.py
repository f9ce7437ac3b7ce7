"""`beamstream report` on the output of every config/ example."""

from __future__ import annotations

import re

import pytest
from bokeh.document import Document

from beamstream.cli import main
from beamstream.sinks.dashboard.report import build_report, load_report_data
from tests.examples import EXAMPLES

#: the result shown first in each example's report (the pipeline's science result)
FIRST_PANEL = {
    "dssc_pump_probe.toml": "binned.pump_probe",
    "minimal.toml": "mean.mean",
    "rixs_centroid.toml": "rixs.spectrum",
    "saxs_qphi.toml": "qphi.I_q",
    "scan_map.toml": "maps.maps/int_saxs",
}


def _names_in_order(item) -> list[str]:
    names = [item.name] if getattr(item, "name", None) else []
    for child in getattr(item, "children", ()):
        names += _names_in_order(child)
    return names


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_report_of_every_example(example_outputs, name, tmp_path, capsys):
    path = example_outputs[name]
    out = tmp_path / "report.html"
    assert main(["report", str(path), "-o", str(out)]) == 0
    page = out.read_text()
    results, records, facts = load_report_data(path)
    layout = build_report(results, records, facts, "t")
    doc = Document()
    doc.add_root(layout)
    header = next(m for m in doc.models if getattr(m, "name", None) == "facts").text
    # plain train ids, human (UTC) times, the config text and the provenance
    first = int(records["train_id"][0])
    assert f"{first} – " in header and "e+10" not in header
    assert re.search(r"started</th><td>20\d\d-\d\d-\d\d \d\d:\d\d:\d\d UTC", header)
    assert "[[processors]]" in header and name in header
    assert "Provenance" in header and "software: beamstream" in header
    # two columns: rows of at most two panels, the science result first
    rows = [c for c in layout.children if type(c).__name__ == "Row"]
    assert rows and all(len(r.children) <= 2 for r in rows)
    assert any(len(r.children) == 2 for r in rows)
    panels = [n for n in _names_in_order(layout) if n.startswith("panel:")]
    assert panels[0] == f"panel:{FIRST_PANEL[name]}"
    assert "records" in [m.name for m in doc.models]
    train_axes = [
        m for m in doc.models if type(m).__name__ == "LinearAxis" and m.axis_label == "train id"
    ]
    assert train_axes and all(not a.formatter.use_scientific for a in train_axes)
    assert all(a.ticker.min_interval == 1 for a in train_axes)  # whole train ids only
    assert "cdn.bokeh.org" not in page and FIRST_PANEL[name] in page
    if name == "scan_map.toml":  # maps are drawn over the motor positions, not in pixels
        fig = next(m for m in doc.models if m.name == "figure:maps.maps/int_saxs")
        assert fig.xaxis[0].axis_label == "x [mm]" and fig.yaxis[0].axis_label == "y [mm]"
