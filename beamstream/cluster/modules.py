"""Module-parallel processing of multi-module detectors: split a pipeline by module, merge back.

A worker given a subset of the modules runs the pipeline with ``source.modules`` set to that
subset (its q-phi geometry then holds only those modules' pixels); the states of workers with
disjoint module subsets of the same trains merge over the module axis: per-pixel sums are placed
side by side (so they equal a single process's bit for bit), per-bin q sums are added, and the
per-frame counts, which every worker counts alike, are checked equal. Plain Python: no Dask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from beamstream.config import PipelineConfig
from beamstream.processors.binner import ScanBinner
from beamstream.processors.pipeline import Pipeline, States
from beamstream.processors.qphi.integrator import QPhiIntegrator
from beamstream.processors.state import BinnedState
from beamstream.streamer.modules import parse_modules

__all__ = ["module_groups", "config_for_modules", "merge_over_modules", "ModuleSplitError"]


class ModuleSplitError(ValueError):
    """A pipeline or states that cannot be split or merged by module."""


def module_groups(config: PipelineConfig, k: int) -> list[tuple[int, ...]]:
    """The config's modules in ``k`` contiguous groups (``k`` at most the number of modules)."""
    if config.source.modules is None:
        raise ModuleSplitError("source.modules: a split by module needs a per-module detector")
    modules = parse_modules(config.source.modules)
    if not 1 <= k <= len(modules):
        raise ModuleSplitError(f"module groups: expected 1 to {len(modules)}, got {k}")
    return [tuple(int(m) for m in g) for g in np.array_split(np.array(modules), k)]


def config_for_modules(config: PipelineConfig, group: Sequence[int]) -> PipelineConfig:
    """The pipeline of a worker that takes the modules ``group`` only."""
    return replace(config, source=replace(config.source, modules=list(group)))


def merge_over_modules(pipeline: Pipeline, parts: Sequence[tuple[Sequence[int], States]]) -> States:
    """The states of ``pipeline`` (all modules) from workers' states over disjoint module groups.

    Raises
    ------
    ModuleSplitError
        Groups that do not partition the modules, scan bins or per-frame counts that differ
        (the workers did not take the same trains), or an accumulator without a module merge.
    """
    full = list(parse_modules(pipeline.config.source.modules))
    got = [int(m) for group, _ in parts for m in group]
    if sorted(got) != sorted(full) or len(set(got)) != len(got):
        raise ModuleSplitError(f"module groups {[list(g) for g, _ in parts]} do not cover {full}")
    ordered = sorted(parts, key=lambda p: full.index(int(p[0][0])))
    out: States = {}
    for acc in pipeline.accumulators:
        states = [s[acc.name] for _, s in ordered]
        if isinstance(acc, ScanBinner):
            out[acc.name] = _merge_binner(acc, states)
        elif isinstance(acc, QPhiIntegrator):
            out[acc.name] = _merge_qphi(acc, states)
        else:
            raise ModuleSplitError(f"{acc.name}: {type(acc).__name__} has no merge over modules")
    return out


def _same_keys(name: str, states: Sequence[BinnedState]) -> np.ndarray:
    keys = states[0].keys
    for s in states[1:]:
        if not np.array_equal(s.keys, keys):
            raise ModuleSplitError(f"{name}: the module workers saw different scan bins")
    return keys


def _equal(name: str, field: str, states: Sequence[BinnedState]) -> np.ndarray:
    first = states[0][field]
    for s in states[1:]:
        if not np.array_equal(s[field], first):
            raise ModuleSplitError(f"{name}.{field}: differs between module workers")
    return first


def _merge_binner(acc: ScanBinner, states: Sequence[BinnedState]) -> BinnedState:
    out = acc.empty()
    keys = _same_keys(acc.name, states)
    for k in keys:
        out.index(float(k))
    out["trains"][...] = _equal(acc.name, "trains", states)
    if "sum" not in states[0]:
        return out
    out.ensure_field("count", states[0].specs["count"][0], states[0].specs["count"][1])
    out["count"][...] = _equal(acc.name, "count", states)
    for field in ("sum", "pixel_count"):
        if field not in states[0]:
            continue
        joined = np.concatenate([s[field] for s in states], axis=2)  # (scan, slot, module, ...)
        out.ensure_field(field, joined.shape[1:], joined.dtype)
        out[field][...] = joined
    return out


def _merge_qphi(acc: QPhiIntegrator, states: Sequence[BinnedState]) -> BinnedState:
    grids = {s.meta.get("grid") for s in states}
    if len(grids) != 1 or acc._meta()["grid"] not in grids:
        raise ModuleSplitError(
            f"{acc.name}: the module workers have other q/phi bins (set q_range explicitly: "
            "the default range depends on the pixels a worker has)"
        )
    out = acc.empty()
    for k in _same_keys(acc.name, states):
        out.index(float(k))
    for field in out.specs:
        if field == "n_frames":
            out[field][...] = _equal(acc.name, field, states)
        else:
            out[field][...] = sum(s[field] for s in states)
    return out
