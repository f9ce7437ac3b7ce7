"""The version log of a run: every config version, the trains it applied to, who asked and when.

Version 1 is the config the run started with. Every accepted change adds a version; a reset of the
accumulation adds one too (same config, kind ``reset``), so the log alone says where every
segment began. A version applies from its ``first_train_id`` up to the next version's first
train: replaying the recorded trains with the log (`VersionLog.version_for`) switches at the same
trains as the live run did.

In a results file the log is ``/entry/control`` (see ``docs/control.md``): one group per version
with its config text and attributes, and the results and states of every closed segment.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import h5py
import numpy as np

__all__ = ["Version", "VersionLog", "INITIAL", "RESET", "write_versions", "read_versions"]

INITIAL = "initial"
RESET = "reset"


@dataclass
class Version:
    """One config version.

    Attributes
    ----------
    number
        1 for the config the run started with, then one more per change or reset.
    config_text
        The whole config (TOML) of this version.
    kind
        ``initial``, ``compatible`` (states kept), ``new_segment`` or ``reset``.
    segment
        Index of the segment (accumulation) its trains went to; a new segment starts with every
        ``new_segment`` or ``reset`` version.
    change
        What changed, as requested (e.g. ``processors.frames.rules[0].min = 200``).
    client
        Who asked (the client's name and address).
    requested_at, applied_at
        Unix times of the request and of its first train (None while pending).
    first_train_id, last_train_id
        The train ids it applied to (None: no train yet).
    """

    number: int
    config_text: str
    kind: str = INITIAL
    segment: int = 0
    change: str = ""
    client: str = ""
    requested_at: float = 0.0
    applied_at: float | None = None
    first_train_id: int | None = None
    last_train_id: int | None = None
    trains: int = field(default=0)

    def to_dict(self, text: bool = True) -> dict[str, Any]:
        d = asdict(self)
        if not text:
            d.pop("config_text")
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Version:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


class VersionLog:
    """All versions of a run, thread-safe (the API reads it while the run appends)."""

    def __init__(self, versions: Iterable[Version] = ()):
        self._lock = threading.Lock()
        self._versions: list[Version] = list(versions)

    @classmethod
    def start(cls, config_text: str, when: float, client: str = "config file") -> VersionLog:
        return cls([Version(1, config_text, INITIAL, 0, "", client, when, when)])

    def __len__(self) -> int:
        return len(self._versions)

    def __iter__(self):  # noqa: ANN204 - an iterator of Version
        return iter(self.list())

    def list(self) -> list[Version]:
        with self._lock:
            return list(self._versions)

    @property
    def last(self) -> Version:
        return self._versions[-1]

    def add(self, version: Version) -> None:
        with self._lock:
            if self._versions and version.number != self._versions[-1].number + 1:
                raise ValueError(
                    f"version {version.number} after {self._versions[-1].number}: not the next"
                )
            self._versions.append(version)

    def applied(self) -> list[Version]:
        """The versions that reached a train (or the initial one), in order."""
        return [v for v in self.list() if v.kind == INITIAL or v.first_train_id is not None]

    def version_for(self, train_id: int) -> Version:
        """The version that applied to ``train_id`` (the last one starting at or before it)."""
        found = self._versions[0]
        for v in self.applied():
            if v.first_train_id is not None and v.first_train_id <= train_id:
                found = v
        return found

    def to_json(self) -> str:
        return json.dumps([v.to_dict() for v in self.list()])

    @classmethod
    def from_json(cls, text: str) -> VersionLog:
        return cls(Version.from_dict(d) for d in json.loads(text))


def write_versions(entry: h5py.Group, log: VersionLog | Iterable[Version]) -> h5py.Group:
    """Write the version log under ``entry/control/versions`` (one group per version)."""
    control = entry.require_group("control")
    control.attrs["NX_class"] = "NXcollection"
    group = control.create_group("versions", track_order=True)
    group.attrs["NX_class"] = "NXcollection"
    last = 0
    for v in log:
        g = group.create_group(f"{v.number:05d}")
        g.attrs["NX_class"] = "NXnote"
        g.create_dataset("config", data=v.config_text)
        for key in ("number", "segment", "trains"):
            g.attrs[key] = np.int64(getattr(v, key))
        for key in ("first_train_id", "last_train_id"):  # absent: no train
            if getattr(v, key) is not None:
                g.attrs[key] = np.uint64(getattr(v, key))
        g.attrs["requested_at"] = np.float64(v.requested_at)
        if v.applied_at is not None:
            g.attrs["applied_at"] = np.float64(v.applied_at)
        for key in ("kind", "change", "client"):
            g.attrs[key] = getattr(v, key)
        last = v.number
    control.attrs["current_version"] = np.int64(last)
    return control


def read_versions(source: str | h5py.Group | h5py.File) -> VersionLog:
    """The version log of a results file (or of its ``/entry`` group); empty when it has none."""
    if isinstance(source, str):
        with h5py.File(source, "r") as f:
            return read_versions(f)
    entry = source["entry"] if "entry" in source else source
    group = entry.get("control/versions")
    if group is None:
        return VersionLog()
    out = []
    for name in sorted(group):
        g = group[name]
        a = g.attrs

        def opt(key: str, a: Any = a) -> Any:
            return a[key].item() if key in a else None

        cfg = g["config"][()]
        out.append(
            Version(
                number=int(a["number"]),
                config_text=cfg.decode() if isinstance(cfg, bytes) else str(cfg),
                kind=str(a["kind"]),
                segment=int(a["segment"]),
                change=str(a["change"]),
                client=str(a["client"]),
                requested_at=float(a["requested_at"]),
                applied_at=opt("applied_at"),
                first_train_id=opt("first_train_id"),
                last_train_id=opt("last_train_id"),
                trains=int(a["trains"]),
            )
        )
    return VersionLog(out)
