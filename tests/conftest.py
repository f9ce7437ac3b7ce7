"""Shared fixtures: endpoints, free ports, subprocesses that are always stopped, waiting helpers."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

#: the virtual environment's bin directory (karabo-bridge-serve-files, ...), next to this Python
VENV_BIN = Path(sys.executable).parent

# Unix socket paths are limited to ~107 bytes; pytest's tmp_path can be longer than that.
_MAX_IPC_PATH = 100


def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read, release)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.01) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds have passed; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return bool(predicate())
        time.sleep(interval)


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[str]:
    """A fresh ``ipc://`` endpoint in a private temporary directory."""
    path = tmp_path / "x.sock"
    if len(str(path)) <= _MAX_IPC_PATH:
        yield f"ipc://{path}"
        return
    short = tempfile.mkdtemp(prefix="bs-")
    try:
        yield f"ipc://{short}/x.sock"
    finally:
        shutil.rmtree(short, ignore_errors=True)


@pytest.fixture
def tcp_endpoint() -> str:
    """A ``tcp://127.0.0.1:PORT`` endpoint on a port that was free a moment ago."""
    return f"tcp://127.0.0.1:{free_tcp_port()}"


class Processes:
    """Start subprocesses for a test and always stop them (terminate, then kill) afterwards."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, argv: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
        """Start ``argv`` with stdout and stderr captured to a pipe (unless overridden)."""
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.STDOUT)
        proc = subprocess.Popen(list(argv), **kwargs)  # type: ignore[call-overload]
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 5.0) -> str:
        """Stop one process (if still running) and return what it printed."""
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        out = b""
        if proc.stdout is not None:
            try:
                out = proc.stdout.read() or b""
            finally:
                proc.stdout.close()
        return out.decode(errors="replace")

    def stop_all(self) -> None:
        """Stop every process started through this object."""
        for proc in self.procs:
            try:
                self.stop(proc)
            except Exception:  # stopping must not hide the test's own failure
                pass
        self.procs.clear()


@pytest.fixture
def processes() -> Iterator[Processes]:
    """Start subprocesses with ``processes.start(argv)``; all are stopped when the test ends."""
    procs = Processes()
    try:
        yield procs
    finally:
        procs.stop_all()


@pytest.fixture
def venv_bin() -> Path:
    """The directory holding the environment's console scripts."""
    return VENV_BIN


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """An environment for child Pythons: this checkout first on the path, unbuffered output."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def wait_until() -> Callable[..., bool]:
    """`wait_for` as a fixture: ``wait_until(predicate, timeout=5.0)``."""
    return wait_for


@pytest.fixture
def free_port() -> Callable[[], int]:
    """`free_tcp_port` as a fixture: call it for each port needed."""
    return free_tcp_port


@pytest.fixture
def cleanup() -> Iterator[Callable[[Callable[[], object]], None]]:
    """Register closers; they run in reverse order when the test ends, even on failure."""
    closers: list[Callable[[], object]] = []
    try:
        yield closers.append
    finally:
        for close in reversed(closers):
            try:
                close()
            except Exception:
                pass


@pytest.fixture(scope="session")
def example_outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Results files of every ``config/`` example, run once per session (see tests/examples)."""
    from tests.examples import EXAMPLES, run_example

    out = tmp_path_factory.mktemp("examples")
    sock_dir = tempfile.mkdtemp(prefix="bs-ex-")
    try:
        return {
            name: run_example(name, out, f"ipc://{sock_dir}/{i}.sock")
            for i, name in enumerate(EXAMPLES)
        }
    finally:
        shutil.rmtree(sock_dir, ignore_errors=True)
