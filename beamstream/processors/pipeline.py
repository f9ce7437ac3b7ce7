"""`Pipeline`: the processors of one config, applied to trains; states created, merged, finalized.

The pipeline is pure processing: no sockets, no files, no threads. The runner feeds it trains;
Dask workers can run copies of it and merge their states.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from beamstream.config import ConfigError, PipelineConfig
from beamstream.processors.base import (
    Accumulator,
    Processor,
    Result,
    TrainView,
    Transform,
)
from beamstream.processors.fused import plan_steps
from beamstream.processors.layout import FrameLayout
from beamstream.processors.modules import ModuleLayout
from beamstream.processors.params import ParamError
from beamstream.processors.registry import RegistryError, resolve
from beamstream.streamer.modules import parse_modules
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
        self.slots: tuple[str, ...] = ("image",)
        built = self._build()
        self.transforms = built.transforms
        self.accumulators = built.accumulators
        #: the accumulator updates, with pairs that read the same frames fused into one pass
        self.steps = plan_steps(self.accumulators)

    # -- construction -------------------------------------------------------------------------
    def _build(self) -> _Built:
        cfg = self.config
        transforms: list[Transform] = []
        src = cfg.source
        if src.detector and src.modules is not None:
            modules = parse_modules(src.modules)
            layout = ModuleLayout(
                src.detector, modules, src.key, src.layout, src.frame_shape, src.gain
            )
            transforms.append(layout)
        elif src.detector:
            transforms.append(
                FrameLayout(src.detector, src.key, src.layout, src.frame_shape, src.gain)
            )
        if cfg.scan is not None:
            transforms.append(self._scan_transform())
        accumulators: list[Accumulator] = []
        for pc in cfg.processors:
            proc = self._make(
                pc.type, pc.name, dict(pc.params), f"processors[{pc.index}] ({pc.type})"
            )
            if isinstance(proc, Transform):
                if accumulators:
                    raise ConfigError(
                        f"{cfg.path}: processors[{pc.index}] ({pc.type}): a transform must come "
                        "before the accumulators"
                    )
                transforms.append(proc)
                slots = getattr(proc, "slots", None) or getattr(proc, "pattern", None)
                if slots:
                    self.slots = tuple(slots)
            elif isinstance(proc, Accumulator):
                accumulators.append(proc)
            else:  # pragma: no cover - resolve() only returns these
                raise ConfigError(f"{cfg.path}: processors[{pc.index}]: not a processor")
        return _Built(transforms, accumulators)

    def _scan_transform(self) -> Transform:
        scan = self.config.scan
        params = {
            "source": scan.source,
            "key": scan.key,
            "edges": list(scan.edges) if scan.edges else None,
            "stepsize": scan.stepsize,
            "units": scan.units,
            "name": scan.name,
        }
        return self._make("beamstream.processors.scan:ScanValue", scan.name, params, "scan")

    def _make(self, type_name: str, name: str, params: dict[str, Any], where: str) -> Processor:
        path = self.config.path
        try:
            cls = resolve(type_name)
        except RegistryError as e:
            raise ConfigError(f"{path}: {where}.type: {e}") from None
        accepted = _accepted_kwargs(cls)
        extra = {"name": name, "slots": self.slots}
        if self.config.scan is not None:
            extra["scan_units"] = self.config.scan.units
        if self.config.source.frame_shape is not None:
            extra["frame_shape"] = list(self.config.source.frame_shape)
        params = {k: _resolve_path(v, self.config.path) for k, v in params.items()}
        geometry = params.get("geometry")
        if isinstance(geometry, dict) and geometry.get("extra_geom") == "source":
            if self.config.source.geometry is None:
                raise ConfigError(
                    f"{path}: {where}.geometry.extra_geom: expected a [source] geometry for "
                    '"source", got none'
                )
            table = self._source_geometry_table()
            params["geometry"] = {**geometry, "extra_geom": table}
            if self.config.source.modules is not None:  # only the modules this pipeline takes
                first = 1 if table.get("detector") == "JUNGFRAU" else 0
                modules = parse_modules(self.config.source.modules)
                params["geometry"]["extra_geom_modules"] = [m - first for m in modules]
        for k, v in extra.items():
            if accepted is not None and k in accepted and k not in params:
                params[k] = v
        unknown = [k for k in params if accepted is not None and k not in accepted]
        if unknown:
            known = ", ".join(sorted(accepted - {"self"})) if accepted else ""
            raise ConfigError(f"{path}: {where}.{unknown[0]}: unknown parameter (known: {known})")
        try:
            proc = cls(**params)
        except ParamError as e:
            raise ConfigError(f"{path}: {where}.{e}") from None
        except (ValueError, TypeError, OSError, KeyError) as e:
            raise ConfigError(f"{path}: {where}: {e}") from None
        if not getattr(proc, "name", ""):
            proc.name = name
        return proc

    def _source_geometry_table(self) -> dict[str, Any]:
        from beamstream.config import _beside

        return _beside(self.config.source.geometry, self.config.path)

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
        for step in self.steps:
            step.update(states, view)
        return view

    def merge(self, a: States, b: States) -> States:
        """Merged states (a new dict; inputs are not modified)."""
        return {acc.name: acc.merge(a[acc.name], b[acc.name]) for acc in self.accumulators}

    def finalize(self, states: States) -> dict[str, dict[str, Result]]:
        """Every accumulator's results, by accumulator name."""
        return {acc.name: acc.finalize(states[acc.name]) for acc in self.accumulators}

    def describe(self) -> list[str]:
        """One line per step of the resolved pipeline."""
        lines = [f"transform   {t.describe()}" for t in self.transforms]
        lines += [f"accumulator {a.name}: {a.describe()}" for a in self.accumulators]
        return lines


_FILE_SUFFIXES = (".npy", ".npz", ".h5", ".hdf5", ".nxs", ".poni", ".tif", ".tiff", ".edf")


def _resolve_path(value: Any, config_path: str) -> Any:
    """Relative file names in parameters are relative to the config file when they exist there."""
    if not isinstance(value, str) or not value.lower().endswith(_FILE_SUFFIXES):
        return value
    p = Path(value)
    if p.is_absolute() or config_path.startswith("<"):
        return value
    beside = Path(config_path).parent / p
    return str(beside) if beside.exists() and not p.exists() else value


def _accepted_kwargs(cls: type) -> set[str] | None:
    """Keyword names the constructor takes, or None when it takes ``**kwargs``."""
    sig = inspect.signature(cls.__init__)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
        return None
    return {n for n in sig.parameters if n != "self"}
