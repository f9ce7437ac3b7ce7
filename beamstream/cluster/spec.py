"""`PipelineSpec`: what a worker needs to build the driver's pipeline, and a per-process pool.

A `PipelineConfig` itself does not pickle (its processor parameters are read-only mapping
proxies) and command-line overrides (``--endpoint``) are not in its TOML text, so workers get the
text, the config's absolute path (relative files such as masks resolve against it) and the
overridden ``[source]`` / ``[run]`` values, and parse the config themselves.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from beamstream.accumulation import Partial, combine
from beamstream.config import PipelineConfig, parse_config
from beamstream.processors.pipeline import Pipeline

__all__ = ["PipelineSpec", "borrowed_pipeline", "merge_partials"]


@dataclass(frozen=True)
class PipelineSpec:
    """A picklable, hashable description of a pipeline config (see the module docstring).

    Parameters
    ----------
    text
        The TOML text.
    path
        The config file's absolute path (``<string>`` when there is none).
    source, run
        ``[source]`` and ``[run]`` values as ``(key, value)`` pairs (overrides included).
    """

    text: str
    path: str
    source: tuple[tuple[str, Any], ...] = ()
    run: tuple[tuple[str, Any], ...] = ()
    fingerprint: str = field(default="", compare=False)

    @classmethod
    def from_config(cls, config: PipelineConfig) -> PipelineSpec:
        """The spec of ``config`` (with its overridden source and run settings)."""
        path = config.path
        if not path.startswith("<"):
            path = str(Path(path).resolve())
        return cls(
            config.text,
            path,
            tuple(
                (f.name, getattr(config.source, f.name))
                for f in fields(config.source)
                if f.name != "options"  # from the text: never overridden
            ),
            tuple(asdict(config.run).items()),
            config.fingerprint,
        )

    def config(self) -> PipelineConfig:
        """Parse the config again (in a worker) with the same overrides."""
        cfg = parse_config(self.text, self.path)
        cfg = cfg.with_source(**dict(self.source)).with_run(**dict(self.run))
        if cfg.source.type == "dectris":  # a from-stream geometry: from the driver's relay
            from beamstream.dectris.cluster import worker_config

            cfg = worker_config(cfg)
        return cfg


_POOL: dict[PipelineSpec, list[Pipeline]] = {}
_POOL_LOCK = threading.Lock()


@contextmanager
def borrowed_pipeline(spec: PipelineSpec) -> Iterator[Pipeline]:
    """A `Pipeline` of ``spec`` for the calling thread only, returned to a per-process pool.

    Building a pipeline can be expensive (q-phi tables, masks), so a worker process keeps the ones
    it built; a thread never shares one with another thread (processors keep caches).
    """
    with _POOL_LOCK:
        idle = _POOL.setdefault(spec, [])
        pipeline = idle.pop() if idle else None
    if pipeline is None:
        pipeline = Pipeline(spec.config())
    try:
        yield pipeline
    finally:
        with _POOL_LOCK:
            _POOL.setdefault(spec, []).append(pipeline)


def merge_partials(spec: PipelineSpec, a: Partial, b: Partial) -> Partial:
    """`combine` with a pooled pipeline of ``spec`` (the Dask merge-tree task)."""
    with borrowed_pipeline(spec) as pipeline:
        return combine(pipeline, a, b)
