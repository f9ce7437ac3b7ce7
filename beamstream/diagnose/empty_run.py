"""Why did a run process nothing? A message naming the cause, and what arrived vs what was expected.

Causes told apart, in order: nothing listening at the endpoint, a source of another socket pattern,
a source that accepts the connection but sends nothing, messages that could not be decoded, trains
that failed in a processor, and trains all rejected (with the reasons counted). When trains arrived,
the sources, keys, shapes and dtypes seen are printed next to the sources and keys the config
expects, with a did-you-mean for the ones missing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from beamstream.config import PipelineConfig
from beamstream.diagnose.probe import SERVER_OF, ProbeResult, probe_endpoint
from beamstream.diagnose.suggest import did_you_mean

__all__ = ["Expected", "expected_inputs", "explain_empty_run", "check_inputs"]


@dataclass(frozen=True)
class Expected:
    """One source/key the config reads, and who reads it."""

    role: str
    source: str
    key: str


def expected_inputs(config: PipelineConfig) -> list[Expected]:
    """The sources/keys the config reads: detector, scan, and any ``source``/``key`` parameters."""
    out = []
    if config.source.detector:
        out.append(Expected("detector", config.source.detector, config.source.key))
    if config.scan is not None:
        out.append(Expected("scan", config.scan.source, config.scan.key))
    for proc in config.processors:
        for src, key in _source_keys(proc.params):
            out.append(Expected(proc.name, src, key))
    return out


def _source_keys(params: Any) -> Iterator[tuple[str, str]]:
    if isinstance(params, Mapping):
        src, key = params.get("source"), params.get("key")
        if isinstance(src, str) and isinstance(key, str):
            yield src, key
        for v in params.values():
            yield from _source_keys(v)
    elif isinstance(params, list | tuple):
        for v in params:
            yield from _source_keys(v)


def check_inputs(expected: list[Expected], sources: Mapping[str, Mapping[str, str]]) -> list[str]:
    """One line per expected input: found (with its dtype/shape) or missing, with a suggestion."""
    lines = []
    for e in expected:
        keys = sources.get(e.source)
        where = f"{e.role:<10} {e.source} [{e.key}]"
        if keys is None:
            hint = did_you_mean(e.source, sources)
            lines.append(f"  {where}: source not in the stream{hint}")
            continue
        found = (
            keys.get(e.key) or keys.get(f"{e.key}.value") or keys.get(e.key.removesuffix(".value"))
        )
        if found is None:
            lines.append(f"  {where}: key not in this source{did_you_mean(e.key, keys)}")
        else:
            lines.append(f"  {where}: found, {found}")
    return lines


def explain_empty_run(
    config: PipelineConfig,
    status: Mapping[str, Any],
    receiver: Mapping[str, Any] | None,
    probe: bool = True,
) -> str:
    """A message saying why ``status`` shows no processed train (several lines).

    Parameters
    ----------
    config
        The run's pipeline configuration.
    status
        The runner's status dict (``received``, ``rejected``, ``errors``, ...).
    receiver
        The receiver's stats (``received``, ``dropped``, ``sources``), None for a run fed by
        another iterable (a replay reader).
    probe
        Probe the endpoint when nothing arrived (tells "nothing listening" from "wrong socket
        pattern").
    """
    src = config.source
    received = int((receiver or status).get("received", 0) or 0)
    lines = [f"no train was processed ({received} message(s) received from {src.endpoint})."]
    if receiver is not None and received == 0:
        lines.append("why: " + _why_nothing(src.endpoint, src.socket, probe))
        return "\n".join(lines)
    lines.append("why: " + _why_unprocessed(status, receiver or {}))
    sources = (receiver or {}).get("sources") or {}
    expected = expected_inputs(config)
    if expected:
        lines.append("expected by the config:")
        lines += (
            check_inputs(expected, sources)
            if sources
            else [f"  {e.role:<10} {e.source} [{e.key}]" for e in expected]
        )
    if sources:
        lines.append("what arrived (sources, keys, dtype[shape]):")
        lines.append(_sources_table(sources))
    return "\n".join(lines)


def _why_nothing(endpoint: str, socket: str, probe: bool) -> str:
    if not probe:
        return f"nothing arrived from {endpoint}"
    found: ProbeResult = probe_endpoint(endpoint)
    if not found.listening:
        return (
            f"nothing listening at {endpoint}: start the source, or check source.endpoint "
            "(--endpoint)"
        )
    if not found.accepts:
        return (
            f"something listens at {endpoint} but no ZeroMQ REP, PUB or PUSH socket answered: "
            "is it another service (check source.endpoint)?"
        )
    if socket not in found.accepts:
        server = SERVER_OF[found.accepts[0]]
        return (
            f"wrong socket pattern: the source at {endpoint} is a {server} socket, which a "
            f"{socket} client cannot read; set source.socket = {found.accepts[0]!r} "
            f"(--socket {found.accepts[0]})"
        )
    return (
        f"a source listens at {endpoint} (it accepts {socket}) but sent no train: is it "
        "paused, or serving another client?"
    )


def _why_unprocessed(status: Mapping[str, Any], receiver: Mapping[str, Any]) -> str:
    malformed = {k: v for k, v in (receiver.get("dropped") or {}).items() if "malformed" in k}
    rejected = dict(status.get("rejected") or {})
    errors = dict(status.get("errors") or {})
    parts = []
    if rejected:
        reason, n = max(rejected.items(), key=lambda kv: kv[1])
        parts.append(
            f"all trains rejected: {reason} ({n})"
            if len(rejected) == 1
            else "trains rejected: " + ", ".join(f"{k} ({v})" for k, v in rejected.items())
        )
    if errors:
        parts.append(
            "trains failed in a processor: "
            + ", ".join(f"{k} ({v})" for k, v in errors.items())
            + " (see the log)"
        )
    if malformed:
        parts.append(
            "messages not decodable: "
            + ", ".join(f"{k.removeprefix('malformed:')} ({v})" for k, v in malformed.items())
        )
    if not parts:
        dropped = receiver.get("dropped") or {}
        parts.append(
            "no train reached the pipeline" + (f" (dropped: {dict(dropped)})" if dropped else "")
        )
    return "; ".join(parts)


def _sources_table(sources: Mapping[str, Mapping[str, str]]) -> str:
    from beamstream.tools.monitor import format_sources

    return format_sources({"sources": sources})
