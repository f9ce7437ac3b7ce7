"""Pipeline configuration: one TOML file per pipeline, loaded into frozen dataclasses.

Errors name the file, the table, the key, what was expected and what was found, e.g.
``config/x.toml: source.socket: expected one of 'REQ', 'SUB', 'PULL', got 'DEALER'``.
Processor parameters are checked by the processors themselves when the pipeline is built
(`beamstream.processors.pipeline.Pipeline`), with the same kind of message.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from beamstream.diagnose.suggest import did_you_mean

__all__ = [
    "ConfigError",
    "PipelineConfig",
    "SourceConfig",
    "ScanConfig",
    "ProcessorConfig",
    "SinkConfig",
    "RunConfig",
    "ClusterConfig",
    "load_config",
    "fingerprint_diff",
    "text_fingerprint",
    "parse_config",
    "CURRENT_VERSION",
]

CURRENT_VERSION = 1
#: migrations from version N to N + 1 (plain dict -> dict functions); none needed yet
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


class ConfigError(ValueError):
    """A configuration problem, located as ``file: table.key: expected ..., got ...``."""


@dataclass(frozen=True)
class SourceConfig:
    """Where trains come from and where the detector data is in them.

    ``type`` names the source plug-in (`beamstream.sources`; default the Karabo Bridge
    receiver, which takes ``endpoint``, ``socket``, ``protocol``, ``queue`` and ``policy``).
    Every other key of the table is in ``options``, checked by the source type itself.
    """

    type: str = "karabo_bridge"
    endpoint: str = "tcp://127.0.0.1:4545"
    socket: str = "REQ"
    protocol: str = "2.2"
    detector: str | None = None  # source name of the detector data
    key: str = "image.data"
    layout: tuple[str, ...] | None = None  # e.g. ("frame", "ss", "fs"); None: from the message
    frame_shape: tuple[int, ...] | None = None  # expected shape of one frame, checked per train
    dtype: str | None = None  # expected dtype of the detector data (kernels compile for it early)
    queue: int = 8
    policy: str = "block"
    timeout: float | None = None  # seconds without data before a run ends (None: never)
    max_frame_bytes: int = 1 << 30  # larger frames are refused by ZeroMQ before receipt
    curve_server_key: str | None = None  # CURVE: the source's public key file (`beamstream keys`)
    curve_client_key: str | None = None  # CURVE: this client's secret key file
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class ScanConfig:
    """The scan variable: a source/key and how its values are binned."""

    source: str
    key: str
    edges: tuple[float, ...] | None = None
    stepsize: float | None = None
    units: str = ""
    name: str = "scan"


@dataclass(frozen=True)
class ProcessorConfig:
    """One ``[[processors]]`` table: its type, instance name and remaining parameters."""

    type: str
    name: str
    params: Mapping[str, Any]
    index: int = 0


@dataclass(frozen=True)
class SinkConfig:
    """One ``[[sinks]]`` table."""

    type: str
    params: Mapping[str, Any]
    index: int = 0


@dataclass(frozen=True)
class RunConfig:
    """How a run proceeds: snapshot interval, limits, status output."""

    interval: float = 1.0
    trains: int | None = None
    duration: float | None = None
    status_interval: float = 1.0
    records: int = 10000  # per-train records kept in memory for sinks
    explain_after: float = 10.0  # s without a processed train before saying why (0: only at end)


@dataclass(frozen=True)
class ClusterConfig:
    """Scale-out settings (used by the Dask runner)."""

    workers: int = 0
    scheduler: str | None = None


@dataclass(frozen=True)
class PipelineConfig:
    """A whole pipeline, as loaded from one TOML file."""

    version: int
    source: SourceConfig
    scan: ScanConfig | None
    processors: tuple[ProcessorConfig, ...]
    sinks: tuple[SinkConfig, ...]
    run: RunConfig
    cluster: ClusterConfig
    path: str = "<string>"
    text: str = field(default="", repr=False)

    def fingerprint_parts(self) -> dict[str, Any]:
        """The processing-relevant parts: detector and layout, scan and processors.

        Endpoints, sinks, run settings and comments do not count: a run resumed from another
        endpoint, with other sinks, is still the same accumulation.
        """
        src = self.source
        return _plain(
            {
                "version": self.version,
                "source": {k: getattr(src, k) for k in _FINGERPRINT_SOURCE_KEYS},
                "scan": asdict(self.scan) if self.scan is not None else None,
                "processors": [
                    {"type": p.type, "name": p.name, **dict(p.params)} for p in self.processors
                ],
            }
        )

    @property
    def fingerprint(self) -> str:
        """The config version: a hash of `fingerprint_parts` (states of two never merge)."""
        canon = json.dumps(self.fingerprint_parts(), sort_keys=True, default=str)
        return hashlib.sha256(canon.encode()).hexdigest()[:16]

    def with_source(self, **changes: Any) -> PipelineConfig:
        """A copy with source settings overridden (e.g. from the command line).

        Switching to a SUB socket turns the policy ``block`` (which SUB cannot honour) into
        ``drop_oldest``.
        """
        changes = {k: v for k, v in changes.items() if v is not None}
        source = replace(self.source, **changes)
        if source.socket == "SUB" and source.policy == "block" and "policy" not in changes:
            source = replace(source, policy="drop_oldest")
        return replace(self, source=source)

    def with_run(self, **changes: Any) -> PipelineConfig:
        changes = {k: v for k, v in changes.items() if v is not None}
        return replace(self, run=replace(self.run, **changes))


#: ``[source]`` keys that decide what the accumulated states mean
_FINGERPRINT_SOURCE_KEYS = ("detector", "key", "layout", "frame_shape")


def _plain(obj: Any) -> Any:
    """Mappings, tuples and lists as plain JSON-like values (for hashing and comparing)."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def fingerprint_diff(a: PipelineConfig, b: PipelineConfig) -> list[str]:
    """Human-readable differences between two configs' processing-relevant parts."""
    pa, pb = a.fingerprint_parts(), b.fingerprint_parts()
    out = []
    for key in pa:
        x, y = pa[key], pb[key]
        if key == "processors" and len(x) != len(y):
            out.append(f"{len(x)} processors vs {len(y)}")
        elif key == "processors":
            for i, (u, v) in enumerate(zip(x, y, strict=True)):
                out += [
                    f"processors[{i}].{k}: {u.get(k)!r} vs {v.get(k)!r}"
                    for k in sorted(set(u) | set(v))
                    if u.get(k) != v.get(k)
                ]
        elif isinstance(x, dict) and isinstance(y, dict):
            out += [
                f"{key}.{k}: {x.get(k)!r} vs {y.get(k)!r}"
                for k in sorted(set(x) | set(y))
                if x.get(k) != y.get(k)
            ]
        elif x != y:
            out.append(f"{key}: {x!r} vs {y!r}")
    return out


def text_fingerprint(text: str) -> str:
    """`PipelineConfig.fingerprint` of a config's TOML text (empty text: empty string)."""
    return parse_config(text).fingerprint if text.strip() else ""


def load_config(path: str | Path) -> PipelineConfig:
    """Load and check a pipeline TOML file."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError(f"{p}: cannot read: {e.strerror or e}") from None
    return parse_config(text, str(p))


def parse_config(text: str, path: str = "<string>") -> PipelineConfig:
    """Parse pipeline TOML text (``path`` is used in messages)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    return _Checker(path).pipeline(raw, text)


class _Checker:
    """Turns the raw TOML dict into dataclasses, with located error messages."""

    def __init__(self, path: str):
        self.path = path

    def fail(self, where: str, expected: str, got: Any) -> ConfigError:
        return ConfigError(f"{self.path}: {where}: expected {expected}, got {got!r}")

    def pipeline(self, raw: dict[str, Any], text: str) -> PipelineConfig:
        raw = self.migrate(raw)
        self.unknown(
            "", raw, {"version", "source", "scan", "processors", "sinks", "run", "cluster"}
        )
        return PipelineConfig(
            version=CURRENT_VERSION,
            source=self.source(raw.get("source", {})),
            scan=self.table("scan", raw["scan"], ScanConfig) if "scan" in raw else None,
            processors=tuple(self.processors(raw.get("processors", []))),
            sinks=tuple(self.sinks(raw.get("sinks", []))),
            run=self.table("run", raw.get("run", {}), RunConfig),
            cluster=self.table("cluster", raw.get("cluster", {}), ClusterConfig),
            path=self.path,
            text=text,
        )

    def source(self, raw: Any) -> SourceConfig:
        """The ``[source]`` table: keys a plug-in source does not share go to ``options``."""
        if not isinstance(raw, dict):
            raise self.fail("source", "a table", raw)
        typ = raw.get("type", "karabo_bridge")
        if not isinstance(typ, str) or not typ:
            raise self.fail("source.type", "a source type name or package.module:Class", typ)
        if typ == "karabo_bridge":
            if "options" in raw:
                raise self.fail("source.options", "no such key", raw["options"])
            return self.table("source", raw, SourceConfig)
        known = {f.name for f in fields(SourceConfig)} - {"options"}
        options = {k: v for k, v in raw.items() if k not in known}
        cfg = self.table("source", {k: v for k, v in raw.items() if k in known}, SourceConfig)
        return replace(cfg, options=MappingProxyType(options))

    def migrate(self, raw: dict[str, Any]) -> dict[str, Any]:
        version = raw.get("version")
        if isinstance(version, bool) or not isinstance(version, int):
            raise self.fail("version", f"an integer (current: {CURRENT_VERSION})", version)
        if version > CURRENT_VERSION:
            raise self.fail("version", f"at most {CURRENT_VERSION} (upgrade beamstream)", version)
        while version < CURRENT_VERSION:
            if version not in MIGRATIONS:
                raise self.fail("version", f"a version from 1 to {CURRENT_VERSION}", version)
            raw = MIGRATIONS[version](raw)
            version += 1
        return raw

    def unknown(self, table: str, raw: Mapping[str, Any], known: set[str]) -> None:
        for key in raw:
            if key not in known:
                where = f"{table}.{key}" if table else key
                hint = did_you_mean(key, known)
                expected = "one of the keys " + ", ".join(sorted(known))
                raise ConfigError(f"{self.fail(where, expected, 'unknown key')}{hint}")

    def table(self, name: str, raw: Any, cls: type) -> Any:
        if not isinstance(raw, dict):
            raise self.fail(name, "a table", raw)
        specs = {f.name: f for f in fields(cls)}
        self.unknown(name, raw, set(specs))
        if cls is SourceConfig and raw.get("socket") == "SUB" and "policy" not in raw:
            raw = {**raw, "policy": "drop_oldest"}  # SUB cannot block: drop, counted
        values = {k: self.value(f"{name}.{k}", v, specs[k].type) for k, v in raw.items()}
        try:
            obj = cls(**values)
        except TypeError as e:  # a required key is missing
            missing = [f for f, s in specs.items() if f not in raw and _required(s)]
            raise self.fail(f"{name}.{missing[0] if missing else '?'}", "a value", "nothing") from e
        self.check_choices(name, obj)
        return obj

    def value(self, where: str, v: Any, typ: str) -> Any:
        """Check ``v`` against a dataclass field's (string) annotation."""
        t = typ.replace(" ", "")
        optional = t.endswith("|None")
        base = t.removesuffix("|None")
        if v is None and optional:
            return None
        if base == "str":
            if isinstance(v, str):
                return v
            raise self.fail(where, "a string", v)
        if base == "int":
            if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
                return v
            raise self.fail(where, "a non-negative integer", v)
        if base == "float":
            if isinstance(v, int | float) and not isinstance(v, bool) and v >= 0:
                return float(v)
            raise self.fail(where, "a non-negative number", v)
        if base == "tuple[str,...]":
            if isinstance(v, list) and all(isinstance(x, str) for x in v):
                return tuple(v)
            raise self.fail(where, "a list of strings", v)
        if base == "tuple[int,...]":
            if isinstance(v, list) and all(isinstance(x, int) and x > 0 for x in v):
                return tuple(v)
            raise self.fail(where, "a list of positive integers", v)
        if base == "tuple[float,...]":
            if isinstance(v, list) and all(isinstance(x, int | float) for x in v):
                return tuple(float(x) for x in v)
            raise self.fail(where, "a list of numbers", v)
        return v

    def check_choices(self, name: str, obj: Any) -> None:
        if isinstance(obj, SourceConfig):
            self.choice(f"{name}.socket", obj.socket, ("REQ", "SUB", "PULL"))
            self.choice(f"{name}.policy", obj.policy, ("block", "drop_oldest", "drop_newest"))
            self.choice(f"{name}.protocol", obj.protocol, ("2.2", "1.0"))
            if obj.socket == "SUB" and obj.policy == "block":
                raise self.fail(
                    f"{name}.policy",
                    "'drop_oldest' or 'drop_newest' with socket 'SUB' (a SUB socket cannot push "
                    "back: ZeroMQ drops for a slow subscriber)",
                    obj.policy,
                )
            if obj.queue < 1:
                raise self.fail(f"{name}.queue", "a positive integer", obj.queue)
            if obj.dtype is not None and not _numeric_dtype(obj.dtype):
                raise self.fail(f"{name}.dtype", "a numeric dtype such as 'uint16'", obj.dtype)
        if isinstance(obj, ScanConfig):
            if obj.edges is not None and obj.stepsize is not None:
                raise self.fail(
                    f"{name}.stepsize", "either edges or stepsize, not both", obj.stepsize
                )
            if obj.edges is not None and (
                len(obj.edges) < 2
                or any(b <= a for a, b in zip(obj.edges, obj.edges[1:], strict=False))
            ):
                raise self.fail(f"{name}.edges", "at least 2 increasing numbers", list(obj.edges))
            if obj.stepsize is not None and obj.stepsize <= 0:
                raise self.fail(f"{name}.stepsize", "a positive number", obj.stepsize)
        if isinstance(obj, RunConfig) and obj.interval <= 0:
            raise self.fail(f"{name}.interval", "a positive number of seconds", obj.interval)

    def choice(self, where: str, v: str, choices: tuple[str, ...]) -> None:
        if v not in choices:
            raise self.fail(where, "one of " + ", ".join(repr(c) for c in choices), v)

    def processors(self, raw: Any) -> list[ProcessorConfig]:
        if not isinstance(raw, list):
            raise self.fail("processors", "an array of tables ([[processors]])", raw)
        out, names = [], set()
        for i, table in enumerate(raw):
            where = f"processors[{i}]"
            if not isinstance(table, dict):
                raise self.fail(where, "a table", table)
            typ = table.get("type")
            if not isinstance(typ, str) or not typ:
                raise self.fail(
                    f"{where}.type", "a processor type name or package.module:Class", typ
                )
            name = table.get("name", typ.rsplit(":", 1)[-1])
            if not isinstance(name, str) or not name:
                raise self.fail(f"{where} ({typ}).name", "a non-empty string", name)
            if name in names:
                raise self.fail(
                    f"{where} ({typ}).name", "a name not used by another processor", name
                )
            names.add(name)
            params = {k: v for k, v in table.items() if k not in ("type", "name")}
            out.append(ProcessorConfig(typ, name, MappingProxyType(params), i))
        return out

    def sinks(self, raw: Any) -> list[SinkConfig]:
        if not isinstance(raw, list):
            raise self.fail("sinks", "an array of tables ([[sinks]])", raw)
        out = []
        for i, table in enumerate(raw):
            if not isinstance(table, dict) or not isinstance(table.get("type"), str):
                raise self.fail(f"sinks[{i}].type", "a sink type name", table)
            params = {k: v for k, v in table.items() if k != "type"}
            out.append(SinkConfig(table["type"], MappingProxyType(params), i))
        return out


def _numeric_dtype(name: str) -> bool:
    import numpy as np

    try:
        return np.dtype(name).kind in "biuf"
    except TypeError:
        return False


def _required(f: Any) -> bool:
    from dataclasses import MISSING

    return f.default is MISSING and f.default_factory is MISSING
