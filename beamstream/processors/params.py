"""Parameter checking for processor constructors, with errors the config loader can place.

A processor's constructor takes its config table as keyword arguments and validates them with
these helpers. A `ParamError` names the key, what was expected and what was found; the config
loader prefixes the file and table, giving e.g.
``config/x.toml: processors[2] (qphi).n_phi: expected a positive integer, got -3``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = [
    "ParamError",
    "positive_int",
    "non_negative_int",
    "positive_float",
    "finite_float",
    "one_of",
    "float_range",
    "string_list",
]


class ParamError(ValueError):
    """A bad processor parameter: ``key: expected ..., got ...``."""

    def __init__(self, key: str, expected: str, got: Any):
        self.key = key
        self.expected = expected
        self.got = got
        super().__init__(f"{key}: expected {expected}, got {got!r}")


def positive_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ParamError(key, "a positive integer", value)
    return int(value)


def non_negative_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ParamError(key, "a non-negative integer", value)
    return int(value)


def finite_float(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ParamError(key, "a finite number", value)
    return float(value)


def positive_float(key: str, value: Any) -> float:
    v = finite_float(key, value)
    if v <= 0:
        raise ParamError(key, "a positive number", value)
    return v


def one_of(key: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ParamError(key, "one of " + ", ".join(repr(c) for c in choices), value)
    return value


def float_range(key: str, value: Any) -> tuple[float, float]:
    """A ``[lo, hi]`` pair of finite numbers with lo < hi."""
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ParamError(key, "a [low, high] pair of numbers", value)
    lo, hi = (finite_float(key, v) for v in value)
    if not lo < hi:
        raise ParamError(key, "low < high", value)
    return lo, hi


def string_list(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ParamError(key, "a list of strings", value)
    return tuple(value)
