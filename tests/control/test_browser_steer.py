"""Steering from the dashboard in headless Chromium: draw an ROI with the box tool, see the
config version increase and the ROI's curve appear; the run's API reports the same version."""

from __future__ import annotations

import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from beamstream.control.client import ControlClient
from tests.conftest import wait_for
from tests.sinks.test_browser import CONFIG, FrameSender, browser, pytestmark  # noqa: F401

#: screen position (CSS pixels) of data point (x, y) of the latest-image figure
WHERE = """
const doc = Bokeh.documents[0];
const fig = doc.get_model_by_name('figure:latest');
const view = Bokeh.index.find_one(fig);
if (!view) return null;
const r = view.canvas_view.el.getBoundingClientRect();
const f = view.frame;
return [r.left + f.x_scale.compute(arguments[0]), r.top + f.y_scale.compute(arguments[1])];
"""

STEER = """
const doc = window.Bokeh && Bokeh.documents && Bokeh.documents[0];
if (!doc) return null;
const get = (n) => doc.get_model_by_name(n);
const curves = get('roi_curves');
const rois = get('rois');
const img = get('image:latest');
return {
  version: (get('config_version') || {}).text || '',
  log: (get('change_log') || {}).text || '',
  message: (get('control_message') || {}).text || '',
  rois: rois ? rois.data.name.slice() : [],
  curve: curves && curves.data.ys.length ? Array.from(curves.data.ys[0]).length : 0,
  image: img ? img.data.image[0].length : 0,
};
"""


def _wait(driver: Any, ok, timeout: float = 40.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    probe = None
    from selenium.common.exceptions import TimeoutException

    while time.monotonic() < deadline:
        try:  # the page may be busy for a while after loading on a loaded machine
            probe = driver.execute_script(STEER)
        except TimeoutException:
            continue
        if probe and ok(probe):
            return probe
        time.sleep(0.25)
    pytest.fail(f"not there after {timeout} s: {probe}")


def _drag(driver: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    actions = ActionBuilder(driver)
    p = actions.pointer_action
    p.move_to_location(int(start[0]), int(start[1]))
    p.pointer_down()
    for k in range(1, 6):
        x = start[0] + (end[0] - start[0]) * k / 5
        y = start[1] + (end[1] - start[1]) * k / 5
        p.move_to_location(int(x), int(y))
    p.pointer_up()
    actions.perform()


def _taps(driver: Any, points: list[tuple[float, float]]) -> None:
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    for x, y in points:
        actions = ActionBuilder(driver)
        actions.pointer_action.move_to_location(int(x), int(y))
        actions.pointer_action.pointer_down()
        actions.pointer_action.pointer_up()
        actions.perform()
        time.sleep(0.3)  # separate taps, not a double tap


def test_draw_an_roi_with_the_box_tool(browser, processes, subprocess_env, free_port, tmp_path):  # noqa: F811
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    port = free_port()
    config = tmp_path / "pipeline.toml"
    config.write_text(CONFIG.format(endpoint=endpoint))
    sender = FrameSender(endpoint)
    sender.start()
    run = processes.start(
        [
            sys.executable,
            "-m",
            "beamstream",
            "run",
            str(config),
            "--dashboard-port",
            str(port),
            "-q",
            "-o",
            str(tmp_path / "out" / "results.h5"),
        ],
        env=subprocess_env,
        cwd=str(Path(__file__).resolve().parents[2]),
    )
    url = f"http://127.0.0.1:{port}/"
    lines: list[str] = []

    def read() -> None:
        for raw in iter(run.stdout.readline, b""):
            lines.append(raw.decode(errors="replace"))

    threading.Thread(target=read, daemon=True).start()
    try:
        deadline = time.monotonic() + 120  # a loaded machine: the first page takes a while
        while True:
            assert run.poll() is None, processes.stop(run)
            try:
                with urllib.request.urlopen(url, timeout=10):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the dashboard did not come up"
                time.sleep(0.3)
        api = ControlClient(f"http://127.0.0.1:{port}")
        assert api.config()["version"] == 1  # the API shares the dashboard's server
        # pages may steer when opened with the run's control token (the announced URL)
        assert wait_for(lambda: any("?token=" in line for line in lines), timeout=30), lines
        control_url = next(ln for ln in lines if "?token=" in ln).split(": ", 1)[1].strip()
        browser.set_script_timeout(30)
        browser.get(control_url)
        first = _wait(browser, lambda p: "config version 1" in p["version"] and p["image"] > 0)
        assert first["rois"] == []
        start = browser.execute_script(WHERE, 8, 6)
        end = browser.execute_script(WHERE, 30, 20)
        assert start and end
        _drag(browser, start, end)
        after = _wait(browser, lambda p: "config version 2" in p["version"] and p["curve"] > 0)
        assert after["rois"] == ["roi1"]
        assert "compatible" in after["log"] and "roi1" in after["log"]
        v = api.config()
        assert v["version"] == 2
        (roi,) = v["config"]["processors"][0]["rois"]
        assert roi["name"] == "roi1"
        x0, x1, y0, y1 = roi["box"]
        assert abs(x0 - 8) <= 1 and abs(x1 - 30) <= 1 and abs(y0 - 6) <= 1 and abs(y1 - 20) <= 1
        versions = api.versions()
        assert versions[-1]["kind"] == "compatible" and versions[-1]["client"].startswith("dash")

        # the polygon tool: three taps, then Enter
        browser.execute_script("Bokeh.documents[0].get_model_by_name('roi_poly').active = true;")
        corners = [browser.execute_script(WHERE, x, y) for x, y in ((34, 4), (46, 4), (40, 14))]
        _taps(browser, corners)
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.keys import Keys

        ActionChains(browser).send_keys(Keys.ENTER).perform()
        _wait(browser, lambda p: "config version 3" in p["version"] and len(p["rois"]) == 2)
        rois = api.config()["config"]["processors"][0]["rois"]
        assert [r["name"] for r in rois] == ["roi1", "roi2"]
        poly = rois[1]["polygon"]
        assert len(poly) == 3 and abs(poly[0][0] - 34) < 1 and abs(poly[2][1] - 14) < 1
        shot = tmp_path / "steer.png"
        assert browser.save_screenshot(str(shot))
        errors = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
        assert not errors, errors
    finally:
        sender.stop.set()
        sender.join(5)
        output = processes.stop(run, timeout=15)
    assert run.returncode == 0, output
