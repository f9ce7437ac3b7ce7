"""`Pipeline`: the processors of one config, applied to trains; states created, merged, finalized.

The pipeline is pure processing: no sockets, no files, no threads. The runner feeds it trains;
Dask workers can run copies of it and merge their states.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from beamstream.arrays import resolve_paths
from beamstream.config import ConfigError, PipelineConfig
from beamstream.diagnose.suggest import did_you_mean
from beamstream.processors.base import (
    Accumulator,
    Context,
    Processor,
    Result,
    TrainView,
    Transform,
)
from beamstream.processors.layout import FrameLayout
from beamstream.processors.params import ParamError
from beamstream.processors.presentation import present
from beamstream.processors.registry import RegistryError, resolve
from beamstream.streamer.train import Train

__all__ = ["Pipeline", "States"]

States = dict[str, Any]


@dataclass
class _Built:
    transforms: list[Transform]
    accumulators: list[Accumulator]


class Pipeline:
    """Transforms and accumulators built from a `PipelineConfig`.

    Construction checks every processor's parameters (files such as masks are read here, so a
    bad one fails before any data is received) and raises `ConfigError` with the location.
    """

    def __init__(self, config: PipelineConfig):
        self.config = config
        self.config_dir = None if config.path.startswith("<") else Path(config.path).parent
        self.slots: tuple[str, ...] = ("image",)
        built = self._build()
        self.transforms = built.transforms
        self.accumulators = built.accumulators

    # -- construction -------------------------------------------------------------------------
    def _build(self) -> _Built:
        cfg = self.config
        transforms: list[Transform] = []
        if cfg.source.detector:
            src = cfg.source
            transforms.append(FrameLayout(src.detector, src.key, src.layout, src.frame_shape))
        if cfg.scan is not None:
            transforms.append(self._scan_transform())
        accumulators: list[Accumulator] = []
        provided: dict[str, str] = {}  # product key -> the processor that provides it
        built = []
        for pc in cfg.processors:
            where = f"processors[{pc.index}] ({pc.type})"
            proc = self._make(pc.type, pc.name, dict(pc.params), where, frozenset(provided))
            provided.update(dict.fromkeys(proc.provides(), proc.name))
            built.append((where, proc))
            if isinstance(proc, Transform):
                if accumulators:
                    raise ConfigError(
                        f"{cfg.path}: {where}: a transform must come before the accumulators"
                    )
                transforms.append(proc)
                pattern = proc.frame_pattern()
                if pattern:
                    self.slots = tuple(pattern)
            elif isinstance(proc, Accumulator):
                accumulators.append(proc)
            else:  # pragma: no cover - resolve() only returns these
                raise ConfigError(f"{cfg.path}: {where}: not a processor")
        self._check_requirements(built)
        return _Built(transforms, accumulators)

    def _check_requirements(self, built: list[tuple[str, Processor]]) -> None:
        """Refuse a processor whose required products no processor before it provides."""
        before: set[str] = set()
        for i, (where, proc) in enumerate(built):
            for key in sorted(proc.requires() - before):
                later = [p.name for _, p in built[i + 1 :] if key in p.provides()]
                who = (
                    f"{later[0]!r} provides it but comes after it: list {later[0]!r} first"
                    if later
                    else "no processor provides it"
                )
                raise ConfigError(
                    f"{self.config.path}: {where}: {proc.name!r} requires {key!r}; {who}"
                )
            before |= proc.provides()

    def _scan_transform(self) -> Transform:
        scan = self.config.scan
        params = {
            "source": scan.source,
            "key": scan.key,
            "edges": list(scan.edges) if scan.edges else None,
            "stepsize": scan.stepsize,
            "units": scan.units,
        }
        return self._make("beamstream.processors.scan:ScanValue", scan.name, params, "scan")

    def context(self, name: str, provided: frozenset[str] = frozenset()) -> Context:
        """The build context of processor ``name`` at this point of the pipeline."""
        cfg = self.config
        return Context(
            name=name,
            slots=self.slots,
            scan_units=cfg.scan.units if cfg.scan is not None else "",
            frame_shape=cfg.source.frame_shape,
            dims=cfg.source.layout,
            config_dir=self.config_dir,
            provided=provided,
        )

    def _make(
        self,
        type_name: str,
        name: str,
        params: dict[str, Any],
        where: str,
        provided: frozenset[str] = frozenset(),
    ) -> Processor:
        path = self.config.path
        try:
            cls = self._resolve(type_name)
        except RegistryError as e:
            raise ConfigError(f"{path}: {where}.type: {e}") from None
        params = resolve_paths(params, self.config_dir)
        accepted = _accepted_kwargs(cls)
        unknown = [k for k in params if accepted is not None and k not in accepted]
        if unknown:
            known = sorted(accepted - {"self", "name"}) if accepted else []
            hint = did_you_mean(unknown[0], known)
            raise ConfigError(
                f"{path}: {where}.{unknown[0]}: unknown parameter{hint} (known: {', '.join(known)})"
            )
        try:
            proc = cls.from_config(params, self.context(name, provided))
        except ParamError as e:
            raise ConfigError(f"{path}: {where}.{e}") from None
        except (ValueError, TypeError, OSError, KeyError) as e:
            raise ConfigError(f"{path}: {where}: {e}") from None
        proc.name = name
        return proc

    def _resolve(self, type_name: str) -> type[Processor]:
        """The class of ``type_name``; a module beside the config file is importable."""
        folder = self.config_dir
        if ":" in type_name and folder is not None and str(folder) not in sys.path:
            sys.path.append(str(folder))  # appended: installed modules of one name come first
        return resolve(type_name)

    # -- processing ---------------------------------------------------------------------------
    def empty_states(self) -> States:
        """A new empty state for every accumulator, by name."""
        return {acc.name: acc.empty() for acc in self.accumulators}

    def process(self, train: Train, states: States) -> TrainView:
        """Run one train through the transforms and accumulators.

        Raises
        ------
        Rejected
            When a transform rejects the train (nothing was accumulated).
        """
        view = TrainView(train, slots=self.slots)
        for t in self.transforms:
            view = t(view)
        view.records.setdefault("train_id", train.train_id)
        view.records.setdefault("timestamp", train.timestamp)
        view.records.setdefault("scan_value", view.scan_value)
        view.records.setdefault("frames", view.n_frames)
        view.records.setdefault("accepted_frames", int(len(view.accepted())))
        for acc in self.accumulators:
            acc.update(states[acc.name], view)
        return view

    def merge(self, a: States, b: States) -> States:
        """Merged states (a new dict; inputs are not modified)."""
        return {acc.name: acc.merge(a[acc.name], b[acc.name]) for acc in self.accumulators}

    def finalize(self, states: States) -> dict[str, dict[str, Result]]:
        """Every accumulator's results, by accumulator name (with the scan motor named on their
        ``scan`` axes and each accumulator's main result marked, see `present`)."""
        scan = self.config.scan
        motor = (scan.source, scan.key) if scan is not None else None
        out = {}
        for acc in self.accumulators:
            res = acc.finalize(states[acc.name])
            out[acc.name] = present(res, acc.main_result(res), motor)
        return out

    def describe(self) -> list[str]:
        """One line per step of the resolved pipeline."""
        lines = [f"transform   {t.describe()}" for t in self.transforms]
        lines += [f"accumulator {a.name}: {a.describe()}" for a in self.accumulators]
        return lines


def _accepted_kwargs(cls: type) -> set[str] | None:
    """Keyword names the constructor takes, or None when it takes ``**kwargs``."""
    sig = inspect.signature(cls.__init__)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
        return None
    return {n for n in sig.parameters if n != "self"}
