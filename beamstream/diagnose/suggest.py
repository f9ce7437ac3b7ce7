"""Did-you-mean suggestions for misspelt source, key, parameter and table names."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["did_you_mean", "closest"]


def closest(name: str, candidates: Iterable[str], n: int = 1) -> list[str]:
    """The candidates most like ``name`` (case-insensitive; at most ``n``; maybe none)."""
    cands = [c for c in candidates if c != name]
    by_lower: dict[str, str] = {}
    for c in cands:
        by_lower.setdefault(c.lower(), c)
    hits = difflib.get_close_matches(name.lower(), list(by_lower), n=n, cutoff=0.6)
    if not hits:  # a name that is a part of another, e.g. a key without its 'data.' prefix
        hits = [c for c in by_lower if name.lower() in c or (c and c in name.lower())][:n]
    return [by_lower[h] for h in hits]


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest candidate, or ``""``."""
    hits = closest(name, candidates)
    return f" (did you mean {hits[0]!r}?)" if hits else ""
