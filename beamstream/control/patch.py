"""Config changes: dotted-key assignments or a whole TOML text, turned into a new config text.

A change is applied to the raw TOML tree of the running config, written back as TOML and then
loaded by the same `beamstream.config.parse_config` a config file goes through, so a bad change
gets the same located error (``change: processors[0] (frame_selector).rules[0].min: ...``).

Dotted keys address tables by key and arrays by index; processors (and sinks) may also be
addressed by their name: ``processors.frames.rules[0].min`` is ``processors[i].rules[0].min``
for the processor named ``frames``.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import tomli_w

from beamstream.config import ConfigError

__all__ = [
    "Change",
    "ChangeError",
    "parse_key",
    "apply_change",
    "MAX_KEY_LENGTH",
    "MAX_ASSIGNMENTS",
]

#: limits on one change (a request is refused beyond them)
MAX_KEY_LENGTH = 200
MAX_ASSIGNMENTS = 100
MAX_DEPTH = 12

_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_\-]*)((?:\[\d{1,6}\])*)")
_INDEX = re.compile(r"\[(\d+)\]")


class ChangeError(ConfigError):
    """A change that cannot be applied (bad key, bad value, refused section), located."""


@dataclass(frozen=True)
class Change:
    """One requested config change.

    Attributes
    ----------
    set
        Dotted key -> new value (TOML-compatible: numbers, strings, booleans, lists, tables).
    unset
        Dotted keys to remove.
    toml
        A whole new config text (replaces the running one; ``set``/``unset`` then apply to it).
    client
        Who asked (recorded with the version).
    note
        What the change is about, for the change log (default: the keys and values).
    """

    set: Mapping[str, Any] = field(default_factory=dict)
    unset: tuple[str, ...] = ()
    toml: str | None = None
    client: str = ""
    note: str = ""

    @classmethod
    def from_json(cls, body: Any, client: str = "") -> Change:
        """A change from a decoded JSON request body (``{"set": {...}, "unset": [...],
        "toml": "..."}``); `ChangeError` names what is wrong."""
        if not isinstance(body, dict):
            raise ChangeError(f"change: expected a JSON object, got {_kind(body)}")
        unknown = sorted(set(body) - {"set", "unset", "toml", "client"})
        if unknown:
            raise ChangeError(
                f"change: {unknown[0]}: unknown field (expected set, unset, toml, client)"
            )
        sets = body.get("set", {})
        if not isinstance(sets, dict):
            raise ChangeError(f"change: set: expected an object of key: value, got {_kind(sets)}")
        unset = body.get("unset", [])
        if not isinstance(unset, list) or not all(isinstance(k, str) for k in unset):
            raise ChangeError("change: unset: expected a list of dotted keys")
        text = body.get("toml")
        if text is not None and not isinstance(text, str):
            raise ChangeError(f"change: toml: expected the config as a string, got {_kind(text)}")
        if text is None and not sets and not unset:
            raise ChangeError("change: nothing to change (give set, unset or toml)")
        who = client or body.get("client")
        return cls(dict(sets), tuple(unset), text, str(who)[:200] if who else client)

    def describe(self) -> str:
        """A short human-readable summary (for the change log)."""
        if self.note:
            return self.note
        parts = ["whole config"] if self.toml is not None else []
        parts += [f"{k} = {_short(v)}" for k, v in self.set.items()]
        parts += [f"unset {k}" for k in self.unset]
        return "; ".join(parts)


def parse_key(key: str) -> list[str | int]:
    """``processors.frames.rules[0].min`` -> ``["processors", "frames", "rules", 0, "min"]``."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise ChangeError(f"change: {str(key)[:60]!r}: expected a dotted key such as a.b[0].c")
    path: list[str | int] = []
    for piece in key.split("."):
        m = _PART.fullmatch(piece)
        if m is None:
            raise ChangeError(
                f"change: {key}: {piece!r} is not a key (letters, digits, _ and -, then [index])"
            )
        path.append(m.group(1))
        path.extend(int(i) for i in _INDEX.findall(m.group(2)))
    if len(path) > MAX_DEPTH:
        raise ChangeError(f"change: {key}: more than {MAX_DEPTH} levels")
    return path


def apply_change(text: str, change: Change) -> str:
    """The config text after ``change`` (not yet validated: see `beamstream.control.validate`)."""
    if change.toml is not None:
        text = change.toml
        if not change.set and not change.unset:
            try:
                tomllib.loads(text)
            except tomllib.TOMLDecodeError as e:
                raise ChangeError(f"change: not valid TOML: {e}") from None
            return text  # kept as written (comments included)
    if len(change.set) + len(change.unset) > MAX_ASSIGNMENTS:
        raise ChangeError(f"change: at most {MAX_ASSIGNMENTS} keys per change")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ChangeError(f"change: not valid TOML: {e}") from None
    for key, value in change.set.items():
        _check_value(key, value)
        _assign(raw, key, parse_key(key), value)
    for key in change.unset:
        _remove(raw, key, parse_key(key))
    return tomli_w.dumps(raw)


def _check_value(key: str, value: Any, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise ChangeError(f"change: {key}: value nested too deeply")
    if value is None:
        raise ChangeError(f"change: {key}: null is not a TOML value (use unset to remove a key)")
    if isinstance(value, float) and not math.isfinite(value):
        raise ChangeError(f"change: {key}: expected a finite number, got {value!r}")
    if isinstance(value, list):
        for v in value:
            _check_value(key, v, depth + 1)
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_value(f"{key}.{k}", v, depth + 1)
    elif not isinstance(value, str | int | float | bool):
        raise ChangeError(f"change: {key}: not a TOML value: {_kind(value)}")


def _step(node: Any, part: str | int, key: str, create: bool) -> Any:
    """The child ``part`` of ``node`` (a processor or sink named ``part`` in an array)."""
    if isinstance(node, list):
        if isinstance(part, str):
            named = [t for t in node if isinstance(t, dict) and _name_of(t) == part]
            if not named:
                raise ChangeError(f"change: {key}: no entry named {part!r}")
            return named[0]
        if part >= len(node):
            raise ChangeError(f"change: {key}: index {part} beyond the {len(node)} entries")
        return node[part]
    if isinstance(node, dict) and isinstance(part, str):
        if part not in node:
            if not create:
                raise ChangeError(f"change: {key}: no key {part!r} to change")
            node[part] = {}
        return node[part]
    raise ChangeError(f"change: {key}: {part!r} cannot be looked up in {_kind(node)}")


def _name_of(table: dict[str, Any]) -> str | None:
    name = table.get("name")
    if name is None and isinstance(table.get("type"), str):
        return table["type"].rsplit(":", 1)[-1]
    return name


def _assign(raw: dict[str, Any], key: str, path: list[str | int], value: Any) -> None:
    node: Any = raw
    for part in path[:-1]:
        node = _step(node, part, key, create=True)
    last = path[-1]
    if isinstance(node, dict) and isinstance(last, str):
        node[last] = value
    elif isinstance(node, list) and isinstance(last, int):
        if last > len(node):
            raise ChangeError(f"change: {key}: index {last} beyond the {len(node)} entries")
        node[last : last + 1] = [value]
    else:
        raise ChangeError(f"change: {key}: cannot set {last!r} in {_kind(node)}")


def _remove(raw: dict[str, Any], key: str, path: list[str | int]) -> None:
    node: Any = raw
    for part in path[:-1]:
        node = _step(node, part, key, create=False)
    last = path[-1]
    if isinstance(node, dict) and isinstance(last, str) and last in node:
        del node[last]
    elif isinstance(node, list) and isinstance(last, int) and last < len(node):
        del node[last]
    else:
        raise ChangeError(f"change: {key}: nothing to unset")


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string"}.get(
        type(value), type(value).__name__
    )


def _short(value: Any) -> str:
    s = repr(value)
    return s if len(s) <= 60 else s[:57] + "..."
