"""Helpers shared by the interop tests: server socket for each client socket, value
comparison, and a thread that feeds a sender or server."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

SERVER_FOR = {"REQ": "REP", "SUB": "PUB", "PULL": "PUSH"}


def _assert_value_equal(got: Any, want: Any, where: str) -> None:
    """Arrays: same dtype, shape, values; numpy scalars: the Python value; the rest: ==."""
    if isinstance(want, np.ndarray):
        assert isinstance(got, np.ndarray), where
        assert (got.dtype, got.shape) == (want.dtype, want.shape), where
        np.testing.assert_array_equal(got, want, err_msg=where)
    elif isinstance(want, np.generic):
        assert got == want.item(), where
        assert type(got) is type(want.item()), where
    else:
        assert got == want, where
        assert type(got) is type(want), where


def _assert_data_equal(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for src, values in want.items():
        assert sorted(got[src]) == sorted(values), src
        for key, value in values.items():
            _assert_value_equal(got[src][key], value, f"{src}[{key}]")


class Feeder:
    """Call ``step(i)`` for i = 0, 1, ... in a thread until it returns False or `stop` is called."""

    def __init__(self, step: Callable[[int], bool], limit: int = 100_000):
        self._step = step
        self._limit = limit
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Feeder:
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            for i in range(self._limit):
                if self._stop.is_set() or not self._step(i):
                    return
        except BaseException as e:  # reported by stop()
            self.error = e

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self.thread.ident is not None:
            self.thread.join(timeout)
        assert not self.thread.is_alive(), "feeder thread did not stop"
        if self.error is not None:
            raise self.error
