"""Checking a changed config before it may run: safety rules, full validation, classification.

A change to a running pipeline

* may not touch ``version``, ``[source]``, ``[[sinks]]``, ``[cluster]`` or ``[run]`` limits
  (they cannot switch at a train boundary: restart the run for those);
* may not introduce a processor given by a dotted path (``package.module:Class``): only
  registered types, or dotted paths the run was started with, so a request never imports code;
* may name files (masks, darks, geometry) only inside the allowed folders (the run's output
  folder and the config's folder), and nothing in it writes a file;
* goes through the same loader as a config file, and the pipeline is built (every processor's
  parameters checked, files read) before it is accepted.

A valid change is *compatible* when the accumulator states of the running version stay valid
(only parameters a processor declares in ``live_params`` changed, or processors that only add
records, ``records_only = True``, came or went); otherwise it starts a *new segment*.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from beamstream.config import ConfigError, PipelineConfig, parse_config
from beamstream.control.patch import ChangeError
from beamstream.processors.pipeline import Pipeline
from beamstream.processors.registry import RegistryError, resolve

__all__ = ["Checked", "check_change", "classify", "COMPATIBLE", "NEW_SEGMENT", "FILE_SUFFIXES"]

COMPATIBLE = "compatible"
NEW_SEGMENT = "new_segment"

#: keys of [run] a change may set (the others end or limit the run)
_RUN_LIVE = {"interval", "status_interval"}
_FIXED = ("version", "source", "sinks", "cluster")
FILE_SUFFIXES = (".npy", ".npz", ".h5", ".hdf5", ".nxs", ".poni", ".tif", ".tiff", ".edf")


@dataclass
class Checked:
    """A validated change: the new config, its built pipeline and how it relates to the old."""

    config: PipelineConfig
    pipeline: Pipeline
    kind: str  # COMPATIBLE or NEW_SEGMENT


def check_change(current: PipelineConfig, text: str, roots: Sequence[str | Path] = ()) -> Checked:
    """Validate ``text`` as the next version of ``current``; `ChangeError` if it is refused.

    ``roots``: folders files named in the change may be in (the config's folder is added).
    """
    try:
        new_raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ChangeError(f"change: not valid TOML: {e}") from None
    old_raw = tomllib.loads(current.text) if current.text else {}
    _check_fixed(old_raw, new_raw)
    try:
        config = parse_config(text, "change")
    except ConfigError as e:
        raise ChangeError(str(e)) from None
    _check_types(current, config)
    allowed = [Path(r).resolve() for r in roots]
    if not current.path.startswith("<"):
        allowed.append(Path(current.path).resolve().parent)
    _check_files(old_raw, new_raw, allowed, Path(current.path).parent)
    config = replace(config, path=current.path)
    try:
        pipeline = Pipeline(config)
    except ConfigError as e:
        msg = str(e)
        if msg.startswith(current.path + ":"):
            msg = "change:" + msg[len(current.path) + 1 :]
        raise ChangeError(msg) from None
    return Checked(config, pipeline, classify(current, config))


def _check_fixed(old: dict[str, Any], new: dict[str, Any]) -> None:
    for key in _FIXED:
        if old.get(key) != new.get(key):
            raise ChangeError(
                f"change: {key}: cannot change while the pipeline runs (restart the run to "
                "change it)"
            )
    old_run, new_run = old.get("run", {}), new.get("run", {})
    if not isinstance(new_run, dict):
        raise ChangeError(f"change: run: expected a table, got {new_run!r}")
    for key in set(old_run) | set(new_run):
        if key not in _RUN_LIVE and old_run.get(key) != new_run.get(key):
            raise ChangeError(
                f"change: run.{key}: cannot change while the pipeline runs (only "
                + ", ".join(sorted(_RUN_LIVE))
                + ")"
            )


def _check_types(current: PipelineConfig, new: PipelineConfig) -> None:
    started_with = {p.type for p in current.processors}
    for p in new.processors:
        if ":" in p.type and p.type not in started_with:
            raise ChangeError(
                f"change: processors[{p.index}].type: expected a registered processor type "
                f"(a change cannot load code from a dotted path), got {p.type!r}"
            )


def _check_files(old: dict[str, Any], new: dict[str, Any], allowed: list[Path], base: Path) -> None:
    before = set(_strings(old))
    for where, value in _strings(new):
        if (where, value) in before or not value.lower().endswith(FILE_SUFFIXES):
            continue
        p = Path(value)
        p = (p if p.is_absolute() else base / p).resolve()
        if not any(p.is_relative_to(a) for a in allowed):
            raise ChangeError(
                f"change: {where}: expected a file inside "
                + " or ".join(str(a) for a in allowed)
                + f", got {value!r}"
            )


def _strings(node: Any, where: str = "") -> list[tuple[str, str]]:
    """Every string leaf with its dotted location."""
    if isinstance(node, str):
        return [(where, node)]
    if isinstance(node, dict):
        return [
            x for k, v in node.items() for x in _strings(v, f"{where}.{k}" if where else str(k))
        ]
    if isinstance(node, list):
        return [x for i, v in enumerate(node) for x in _strings(v, f"{where}[{i}]")]
    return []


def classify(old: PipelineConfig, new: PipelineConfig) -> str:
    """`COMPATIBLE` when ``old``'s accumulator states stay valid under ``new``, else
    `NEW_SEGMENT`."""
    return COMPATIBLE if _state_key(old) == _state_key(new) else NEW_SEGMENT


def _state_key(config: PipelineConfig) -> tuple:
    """What the accumulated states depend on: everything but live parameters and records-only
    processors."""
    procs = []
    for p in config.processors:
        try:
            cls = resolve(p.type)
        except RegistryError:
            cls = None
        if getattr(cls, "records_only", False):
            continue
        live = set(getattr(cls, "live_params", ()))
        params = tuple(sorted((k, repr(v)) for k, v in p.params.items() if k not in live))
        procs.append((p.type, p.name, params))
    return (repr(config.source), repr(config.scan), tuple(procs))
