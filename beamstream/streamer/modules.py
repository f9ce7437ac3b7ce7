"""Module numbers and source names of detectors sent as one source per module."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["parse_modules", "module_sources", "has_module_field", "MODULE_FIELD"]

#: the placeholder of the module number in a detector source name: ``{module}``, or with a format
#: specification such as ``{module:02d}`` (JUNGFRAU's ``JNGFR01``)
MODULE_FIELD = re.compile(r"\{module(?::([^}]*))?\}")


def has_module_field(pattern: str | None) -> bool:
    """Whether a source name holds the ``{module}`` placeholder."""
    return bool(pattern) and MODULE_FIELD.search(pattern) is not None


def parse_modules(raw: Any, where: str = "source.modules") -> tuple[int, ...]:
    """Module numbers from ``"0-15"``, ``"0-3,8,10-11"`` or a list of integers.

    Raises
    ------
    ValueError
        Naming ``where``, what was expected and what was found.
    """
    expected = 'a range such as "0-15", "0-3,8" or a list of distinct non-negative integers'
    if isinstance(raw, str):
        out: list[int] = []
        for part in raw.replace(" ", "").split(","):
            m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
            if m is None:
                raise ValueError(f"{where}: expected {expected}, got {raw!r}")
            lo, hi = int(m[1]), int(m[2] if m[2] is not None else m[1])
            if hi < lo:
                raise ValueError(f"{where}: expected {expected}, got {raw!r}")
            out.extend(range(lo, hi + 1))
    elif isinstance(raw, list | tuple) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in raw
    ):
        out = list(raw)
    else:
        raise ValueError(f"{where}: expected {expected}, got {raw!r}")
    if not out or len(set(out)) != len(out):
        raise ValueError(f"{where}: expected {expected}, got {raw!r}")
    return tuple(out)


def module_sources(pattern: str, modules: tuple[int, ...]) -> tuple[str, ...]:
    """The source name of every module: ``pattern`` with ``{module}`` replaced."""
    return tuple(MODULE_FIELD.sub(lambda f, m=m: format(m, f[1] or ""), pattern) for m in modules)
