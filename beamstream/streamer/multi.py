"""`MatchedSource`: several Karabo Bridge inputs, matched by train id into one `Train` stream.

Each input is a `Receiver` (its own socket and decoding thread, bounded queue); the trains they
deliver are matched by a `TrainMatcher` in the consumer's thread. The object behaves like a
`Receiver`: ``get(timeout)``, ``closed``, ``close()``, ``stats()``, iteration, context manager.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from beamstream.streamer.matcher import INCOMPLETE_POLICIES, TrainMatcher
from beamstream.streamer.receiver import CLIENT_SOCKETS, Receiver
from beamstream.streamer.train import Train

__all__ = ["InputSpec", "MatchedSource", "parse_inputs", "check_match", "MATCH_DEFAULTS"]

#: the ``[source.match]`` keys and their defaults
MATCH_DEFAULTS: dict[str, Any] = {
    "deadline_ms": 200.0,
    "max_pending": 32,
    "incomplete": "drop",
    "correct_offsets": False,
}

_IDLE_S = 0.001


@dataclass(frozen=True)
class InputSpec:
    """One input of a `MatchedSource`: where it connects and how its ids relate."""

    endpoint: str
    socket: str = "REQ"
    name: str = ""
    offset: int = 0


def parse_inputs(raw: Any, where: str = "source.inputs") -> list[InputSpec]:
    """Check an ``inputs`` list of tables (``endpoint``, ``socket``, ``name``, ``offset``).

    Raises
    ------
    ValueError
        Naming the entry and key, what was expected and what was found.
    """
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
        raise ValueError(f"{where}: expected a non-empty list of input tables, got {raw!r}")
    out, names = [], set()
    for i, t in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(t, Mapping):
            raise ValueError(f"{at}: expected a table, got {t!r}")
        extra = set(t) - {"endpoint", "socket", "name", "offset"}
        if extra:
            raise ValueError(
                f"{at}.{sorted(extra)[0]}: expected one of endpoint, name, offset, socket, "
                "got unknown key"
            )
        endpoint = t.get("endpoint")
        if not isinstance(endpoint, str) or not endpoint:
            raise ValueError(f"{at}.endpoint: expected an endpoint string, got {endpoint!r}")
        socket = t.get("socket", "REQ")
        if not isinstance(socket, str) or socket.upper() not in CLIENT_SOCKETS:
            raise ValueError(f"{at}.socket: expected one of REQ, SUB, PULL, got {socket!r}")
        name = t.get("name", endpoint)
        if not isinstance(name, str) or not name or name in names:
            raise ValueError(f"{at}.name: expected a name used by no other input, got {name!r}")
        offset = t.get("offset", 0)
        if isinstance(offset, bool) or not isinstance(offset, int):
            raise ValueError(f"{at}.offset: expected an integer (train ids), got {offset!r}")
        names.add(name)
        out.append(InputSpec(endpoint, socket.upper(), name, offset))
    return out


def check_match(raw: Any, where: str = "source.match") -> dict[str, Any]:
    """The ``match`` table with defaults filled in; ValueError naming the bad key."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected a table, got {raw!r}")
    extra = set(raw) - set(MATCH_DEFAULTS)
    if extra:
        known = ", ".join(sorted(MATCH_DEFAULTS))
        raise ValueError(f"{where}.{sorted(extra)[0]}: expected one of {known}, got unknown key")
    out = {**MATCH_DEFAULTS, **raw}
    d, n = out["deadline_ms"], out["max_pending"]
    if isinstance(d, bool) or not isinstance(d, int | float) or d <= 0:
        raise ValueError(f"{where}.deadline_ms: expected a positive number, got {d!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{where}.max_pending: expected a positive integer, got {n!r}")
    if out["incomplete"] not in INCOMPLETE_POLICIES:
        raise ValueError(
            f"{where}.incomplete: expected one of 'drop', 'accept', got {out['incomplete']!r}"
        )
    if not isinstance(out["correct_offsets"], bool):
        raise ValueError(
            f"{where}.correct_offsets: expected true or false, got {out['correct_offsets']!r}"
        )
    return out


class MatchedSource:
    """Receive from several inputs and deliver one `Train` per train id.

    Parameters
    ----------
    inputs
        The inputs (see `parse_inputs`).
    deadline_ms
        Milliseconds a train waits for its missing parts.
    max_pending
        Trains waiting at most (memory bound).
    incomplete
        ``"drop"`` or ``"accept"`` (missing inputs and their sources in `Train.missing`).
    correct_offsets
        Apply a detected constant train-id offset of an input.
    queue
        Bound of each input's receive queue and of the queue of matched trains.
    timeout
        Seconds without a train after which iteration ends (None: until `close`).
    """

    def __init__(
        self,
        inputs: Sequence[InputSpec],
        *,
        deadline_ms: float = 200.0,
        max_pending: int = 32,
        incomplete: str = "drop",
        correct_offsets: bool = False,
        queue: int = 4,
        timeout: float | None = None,
        start: bool = True,
    ):
        if incomplete not in INCOMPLETE_POLICIES:
            raise ValueError(
                f"incomplete: expected one of {INCOMPLETE_POLICIES}, got {incomplete!r}"
            )
        self.inputs = list(inputs)
        self.timeout = timeout
        self.matcher = TrainMatcher(
            [i.name for i in self.inputs],
            deadline=deadline_ms / 1000.0,
            max_pending=max_pending,
            incomplete=incomplete,
            offsets={i.name: i.offset for i in self.inputs},
            correct_offsets=correct_offsets,
        )
        self.receivers = [
            Receiver(i.endpoint, i.socket, queue=queue, start=start)  # SUB: drop_oldest
            for i in self.inputs
        ]
        self._ready: deque[Train] = deque()
        self._delivered = 0
        self._closed = False

    @classmethod
    def parameters(cls, config: Any) -> tuple[list[InputSpec], dict[str, Any]]:
        """The inputs and the matching parameters of a ``[source]`` table (`SourceConfig`).

        Raises
        ------
        ValueError
            Naming ``source.inputs[i].key`` or ``source.match.key``.
        """
        options = dict(getattr(config, "options", None) or {})
        inputs = options.get("inputs", getattr(config, "inputs", None))
        match = options.get("match", getattr(config, "match", None))
        return parse_inputs(inputs, "source.inputs"), check_match(match or {}, "source.match")

    def start(self) -> None:
        for rx in self.receivers:
            rx.start()

    # -- consumer side ----------------------------------------------------------------------
    def get(self, timeout: float | None = None) -> Train | None:
        """The next matched train, or None after ``timeout`` seconds or once closed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._ready:
            if self._closed or all(rx.closed for rx in self.receivers):
                self._ready.extend(self.matcher.flush())
                if not self._ready:
                    return None
                break
            if not self._poll() and (deadline is None or time.monotonic() < deadline):
                time.sleep(_IDLE_S)
            elif deadline is not None and time.monotonic() >= deadline and not self._ready:
                return None
        self._delivered += 1
        return self._ready.popleft()

    def _poll(self) -> bool:
        """Take what every input has queued; True when anything arrived."""
        got = False
        for spec, rx in zip(self.inputs, self.receivers, strict=True):
            while (train := rx.get(timeout=0)) is not None:
                got = True
                self._ready.extend(self.matcher.add(spec.name, train, time.monotonic()))
        self._ready.extend(self.matcher.expire(time.monotonic()))
        return got

    def __iter__(self) -> Iterator[Train]:
        while True:
            train = self.get(self.timeout)
            if train is None:
                return
            yield train

    def stats(self) -> dict[str, Any]:
        """Receiver-like totals plus the matcher's counters per input."""
        rx = [r.stats() for r in self.receivers]
        m = self.matcher.stats()
        dropped: dict[str, int] = {}
        for r in rx:
            for k, v in r["dropped"].items():
                dropped[k] = dropped.get(k, 0) + v
        for k, v in m.items():
            if k.startswith("incomplete_dropped") and v:
                dropped["incomplete train"] = dropped.get("incomplete train", 0) + v
        for name, c in m["inputs"].items():
            for reason in ("late", "duplicate", "ahead"):
                if c[reason]:
                    dropped[f"{name}: {reason}"] = c[reason]
        return {
            "endpoint": ", ".join(r["endpoint"] for r in rx),
            "socket": "matched",
            "received": self._delivered + len(self._ready),
            "delivered": self._delivered,
            "dropped": dropped,
            "dropped_total": sum(dropped.values()),
            "bytes": sum(r["bytes"] for r in rx),
            "queued": len(self._ready) + self.matcher.pending,
            "trains_per_s": min((r["trains_per_s"] for r in rx), default=0.0),
            "MB_per_s": sum(r["MB_per_s"] for r in rx),
            "last_train_id": max((r["last_train_id"] or 0 for r in rx), default=None),
            "matcher": m,
            "inputs": {spec.name: r for spec, r in zip(self.inputs, rx, strict=True)},
        }

    def close(self) -> None:
        """Close every input."""
        self._closed = True
        for rx in self.receivers:
            rx.close()

    @property
    def closed(self) -> bool:
        """True once closed, or when every input stopped and no train is left to deliver."""
        if self._closed:
            return True
        drained = not self._ready and self.matcher.pending == 0
        return drained and all(rx.closed for rx in self.receivers)

    def __enter__(self) -> MatchedSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
