"""The live dashboard of ``beamstream run`` in a real (headless Chromium) browser.

A sender thread streams small synthetic trains over tcp 127.0.0.1 to a ``beamstream run``
subprocess; the test opens its dashboard in headless Chromium (Debian's ``chromium`` and
``chromium-driver`` through selenium), reads the document's models with
``Bokeh.documents[0].get_model_by_name`` and checks that they fill and change while trains flow.
Skipped when selenium or Chromium is not installed (CI installs them).
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from beamstream.streamer import Sender, Train

CHROMIUM = next(
    (
        p
        for p in (
            "/usr/bin/chromium",
            shutil.which("chromium") or "",
            shutil.which("chromium-browser") or "",
        )
        if p and os.path.exists(p)
    ),
    None,
)
CHROMEDRIVER = shutil.which("chromedriver") or (
    "/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None
)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt install chromium)"),
    pytest.mark.skipif(
        CHROMEDRIVER is None, reason="chromedriver is not installed (apt install chromium-driver)"
    ),
    pytest.mark.timeout(180),
]

DET = "DET/0:xtdf"
CONFIG = """
version = 1
[source]
endpoint = "{endpoint}"
socket = "PULL"
detector = "DET/0:xtdf"
key = "image.data"
layout = ["frame", "ss", "fs"]
timeout = 60
[scan]
source = "MOTOR"
key = "position"
stepsize = 1.0
[[processors]]
type = "tests.processors.userplugin:FrameTotals"
name = "totals"
[[processors]]
type = "scan_binner"
name = "binner"
[run]
interval = 0.2
status_interval = 100
"""

#: reads what the test checks from the browser's copy of the document
PROBE = """
const doc = window.Bokeh && Bokeh.documents && Bokeh.documents[0];
if (!doc) return null;
const get = (n) => doc.get_model_by_name(n);
const total = (a) => {
  let s = 0, n = 0;
  for (const v of a) if (Number.isFinite(v)) { s += v; n++; }
  return [n, s];
};
const status = get('status_source');
const image = get('image:latest');
const mean = get('image:binner.mean');
const curve = get('curve:totals.mean_total');
const flat = (c) => c ? total([].concat(...c.data.ys.map((y) => Array.from(y)))) : null;
return {
  processed: status ? status.data.processed[0] : null,
  latest: status ? status.data.latest_train_id[0] : null,
  image: image ? total(image.data.image[0]) : null,
  mean: mean ? total(mean.data.image[0]) : null,
  curve: flat(curve),
  text: (get('status') || {}).text || '',
};
"""


class FrameSender(threading.Thread):
    """Streams trains with a PUSH socket until stopped: 4 frames of 32x48 that vary with the id."""

    def __init__(self, endpoint: str, rate: float = 20.0):
        super().__init__(name="sender", daemon=True)
        self.endpoint, self.period = endpoint, 1.0 / rate
        self.stop = threading.Event()
        self.sent = 0

    def run(self) -> None:
        rng = np.random.default_rng(0)
        with Sender(self.endpoint, socket="PUSH") as sender:
            tid = 1000
            while not self.stop.is_set():
                frames = rng.poisson(5 + tid % 7, (4, 32, 48)).astype(np.uint16)
                data = {DET: {"image.data": frames}, "MOTOR": {"position": float(tid % 5)}}
                if sender.send(Train(tid, time.time(), data), timeout=0.2):
                    self.sent += 1
                    tid += 1
                self.stop.wait(self.period)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,2000",
        "--no-first-run",
        "--disable-extensions",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        opts.add_argument(arg)
    service = Service(CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=opts)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(10)
    try:
        yield driver
    finally:
        driver.quit()


def wait_probe(driver: Any, ok, timeout: float = 30.0) -> dict[str, Any]:
    """Probe the page until ``ok(probe)`` holds; the last probe (fails the test on timeout)."""
    deadline = time.monotonic() + timeout
    probe: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        probe = driver.execute_script(PROBE)
        if probe and ok(probe):
            return probe
        time.sleep(0.2)
    pytest.fail(f"the dashboard did not get there in {timeout} s; last probe: {probe}")


def test_dashboard_of_a_run_in_chromium(browser, processes, subprocess_env, free_port, tmp_path):
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
        ],
        env=subprocess_env,
        cwd=str(Path(__file__).resolve().parents[2]),
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:  # wait for the server (the subprocess imports numba, bokeh, ...)
            assert run.poll() is None, f"beamstream run ended early:\n{processes.stop(run)}"
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "the dashboard did not come up"
                time.sleep(0.3)
        browser.get(url)
        first = wait_probe(
            browser,
            lambda p: (
                p["processed"]
                and p["processed"] > 0
                and p["image"]
                and p["image"][0] > 0
                and p["curve"]
                and p["curve"][0] > 0
                and p["mean"]
                and p["mean"][0] > 0
            ),
        )
        assert first["image"][0] == 32 * 48  # the latest train's image, full size
        assert "trains/s" in first["text"] and "processed" in first["text"]
        later = wait_probe(
            browser,
            lambda p: (
                p["processed"] > first["processed"] + 10
                and p["latest"] > first["latest"]
                and p["image"][1] != first["image"][1]
                and p["curve"] != first["curve"]
            ),
        )
        assert later["curve"][0] >= first["curve"][0]  # more scan bins, never fewer
        shot = tmp_path / "dashboard.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        errors = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
        assert not errors, errors
    finally:
        sender.stop.set()
        sender.join(5)
        output = processes.stop(run, timeout=15)  # SIGTERM: a clean stop with a final snapshot
    assert run.returncode == 0, output
    assert "processed" in output and sender.sent > 0


HEADER_PROBE = """
const doc = window.Bokeh && Bokeh.documents && Bokeh.documents[0];
if (!doc) return null;
const h = doc.get_model_by_name('header_source');
const div = doc.get_model_by_name('header');
if (!h || !div) return null;
return {state: h.data.state[0], level: h.data.level[0], age: h.data.age_s[0],
        last: h.data.last_train_id[0], text: div.text};
"""


def test_header_shows_the_train_age_turn_stale_when_the_source_stops(
    browser, processes, subprocess_env, free_port, tmp_path
):
    from selenium.common.exceptions import TimeoutException

    endpoint = f"tcp://127.0.0.1:{free_port()}"
    port = free_port()
    config = tmp_path / "pipeline.toml"
    config.write_text(CONFIG.format(endpoint=endpoint).replace("timeout = 60\n", ""))
    sender = FrameSender(endpoint)
    sender.start()
    run = processes.start(
        [sys.executable, "-m", "beamstream", "run", str(config), "--dashboard-port", str(port),
         "-q"],
        env=subprocess_env,
        cwd=str(Path(__file__).resolve().parents[2]),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"

    def header(ok, timeout: float = 40.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        probe = None
        while time.monotonic() < deadline:
            assert run.poll() is None, f"beamstream run ended early:\n{processes.stop(run)}"
            try:
                probe = browser.execute_script(HEADER_PROBE)
            except TimeoutException:  # a page busy drawing (a loaded machine): ask again
                continue
            if probe and ok(probe):
                return probe
            time.sleep(0.2)
        pytest.fail(f"the header did not get there in {timeout} s; last probe: {probe}")

    try:
        deadline = time.monotonic() + 60
        while True:
            assert run.poll() is None, f"beamstream run ended early:\n{processes.stop(run)}"
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "the dashboard did not come up"
                time.sleep(0.3)
        browser.get(url)
        live = header(lambda p: p["state"] == "receiving" and p["last"] >= 1000, timeout=60)
        assert live["level"] == "ok" and live["age"] < 2.0
        assert f"source <code>{endpoint} (PULL)</code>" in live["text"]
        assert "s ago" in live["text"] and "config pipeline.toml" in live["text"]
        sender.stop.set()  # the source stops; the run goes on waiting
        sender.join(5)
        slow = header(lambda p: p["level"] == "amber")
        assert slow["state"] == "slow" and 2.0 <= slow["age"] < 10.0
        stalled = header(lambda p: p["level"] == "red")
        assert stalled["state"] == "stalled" and stalled["age"] >= 10.0
        assert stalled["last"] == live["last"] or stalled["last"] > live["last"]
        assert "#c62828" in stalled["text"]  # the age is drawn in red
        shot = tmp_path / "stalled.png"
        assert browser.save_screenshot(str(shot))
    finally:
        sender.stop.set()
        sender.join(5)
        output = processes.stop(run, timeout=15)
    assert run.returncode == 0, output
