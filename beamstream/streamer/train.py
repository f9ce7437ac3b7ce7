"""The `Train`: one train's data from every source, as it travels through beamstream."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Train", "MissingData"]


class MissingData(KeyError):
    """A source or key is not in a train."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else "missing data"


_MISSING = object()


@dataclass(eq=False)
class Train:
    """One train: data and metadata of every source that was matched for one train id.

    Parameters
    ----------
    train_id
        The train id (``timestamp.tid`` on the wire).
    timestamp
        Unix time in seconds, or None when the source sent none (e.g. data read from files).
    data
        ``{source: {key: value | ndarray}}``; keys are flat dotted Karabo paths (``image.data``).
        Arrays decoded from the wire are read-only, zero-copy views on the received frames.
    meta
        ``{source: {metadata key: value}}`` as sent in the protocol (``timestamp.tid`` etc.).
    dims
        ``{source: {key: ("frame", "ss", "fs")}}``: optional axis names for arrays, carried in the
        array headers as beamstream's backward-compatible ``dims`` extension.
    """

    train_id: int
    timestamp: float | None = None
    data: dict[str, dict[str, Any]] = field(default_factory=dict)
    meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    dims: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    #: the received buffers the arrays are views of (kept alive with the train)
    buffers: list[Any] = field(default_factory=list, repr=False, compare=False)
    #: size of the encoded message in bytes (0 when not received from the wire)
    nbytes: int = field(default=0, compare=False)
    #: ``time.monotonic()`` when the receiver got the message (0.0 when not received)
    received_at: float = field(default=0.0, compare=False, repr=False)
    #: inputs and sources that did not deliver this train (a train matched from several inputs
    #: and accepted incomplete); their data is absent, never zero-filled
    missing: tuple[str, ...] = field(default=(), compare=False)

    def get(self, source: str, key: str, default: Any = _MISSING) -> Any:
        """Look up ``data[source][key]``, accepting the file spelling ``key.value`` too.

        Online Karabo data carries control properties as ``prop``, data read from files as
        ``prop.value``; either spelling finds either.

        Raises
        ------
        MissingData
            When the source or key is absent and no default is given.
        """
        src = self.data.get(source)
        if src is not None:
            for candidate in _spellings(key):
                if candidate in src:
                    return src[candidate]
        if default is not _MISSING:
            return default
        if src is None:
            raise MissingData(f"train {self.train_id}: no source {source!r}")
        raise MissingData(f"train {self.train_id}: source {source!r} has no key {key!r}")

    def get_dims(self, source: str, key: str) -> tuple[str, ...] | None:
        """Axis names sent with an array (the ``dims`` header extension), or None."""
        return self.dims.get(source, {}).get(key)

    def copy(self) -> Train:
        """A deep copy whose arrays own their memory (for processors that keep data)."""
        data = {
            src: {k: (np.array(v) if isinstance(v, np.ndarray) else v) for k, v in d.items()}
            for src, d in self.data.items()
        }
        meta = {src: dict(m) for src, m in self.meta.items()}
        dims = {src: dict(d) for src, d in self.dims.items()}
        out = Train(self.train_id, self.timestamp, data, meta, dims, [], self.nbytes)
        out.missing = self.missing
        return out

    def array_keys(self) -> list[tuple[str, str]]:
        """``(source, key)`` of every array in the train."""
        return [
            (src, k)
            for src, d in self.data.items()
            for k, v in d.items()
            if isinstance(v, np.ndarray)
        ]


def _spellings(key: str) -> tuple[str, ...]:
    if key.endswith(".value"):
        return (key, key[: -len(".value")])
    return (key, key + ".value")
