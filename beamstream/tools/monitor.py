"""`beamstream monitor ENDPOINT`: a live status line for a Karabo Bridge stream."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

from beamstream.streamer.receiver import Receiver

__all__ = ["monitor", "format_status", "register"]


def format_status(stats: dict[str, Any]) -> str:
    """One status line from `Receiver.stats()`."""
    drops = ", ".join(f"{k}={v}" for k, v in sorted(stats["dropped"].items())) or "none"
    return (
        f"{stats['trains_per_s']:6.1f} trains/s {stats['MB_per_s']:8.1f} MB/s | "
        f"received {stats['received']} delivered {stats['delivered']} | drops: {drops} | "
        f"last train {stats['last_train_id']}"
    )


def format_sources(stats: dict[str, Any]) -> str:
    """The sources, keys, shapes and dtypes seen, one key per line."""
    lines = []
    for src, keys in sorted(stats["sources"].items()):
        lines.append(f"  {src}")
        lines += [f"    {k:<32} {v}" for k, v in sorted(keys.items())]
    return "\n".join(lines) if lines else "  (no train received)"


def monitor(
    endpoint: str,
    socket: str = "REQ",
    duration: float | None = None,
    trains: int | None = None,
    interval: float = 1.0,
    out: TextIO = sys.stdout,
) -> dict[str, Any]:
    """Receive from ``endpoint`` and print a status line every ``interval`` seconds.

    Stops after ``duration`` seconds or ``trains`` trains (None: until Ctrl-C); returns the final
    `Receiver.stats()`.
    """
    start = time.monotonic()
    live = out.isatty()
    n = 0
    next_print = start + interval
    with Receiver(endpoint, socket=socket, queue=8, policy="drop_oldest") as rx:
        try:
            while (trains is None or n < trains) and (
                duration is None or time.monotonic() - start < duration
            ):
                if rx.get(timeout=0.2) is not None:
                    n += 1
                if time.monotonic() >= next_print:
                    next_print += interval
                    line = format_status(rx.stats())
                    out.write(("\r" + line) if live else (line + "\n"))
                    out.flush()
        except KeyboardInterrupt:
            pass
        stats = rx.stats()
    out.write(("\n" if live else "") + format_status(stats) + "\nsources seen:\n")
    out.write(format_sources(stats) + "\n")
    return stats


def _handler(args: argparse.Namespace) -> int:
    stats = monitor(args.endpoint, args.socket, args.duration, args.trains, args.interval)
    return 0 if stats["delivered"] else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "monitor",
        help="show a live status line of a stream (rates, drops, sources)",
        description="Connect to a Karabo Bridge endpoint and print trains/s, MB/s, drops by "
        "reason, the last train id and the sources/keys/shapes seen. Exits 1 if no train came.",
    )
    p.add_argument("endpoint", help="e.g. tcp://127.0.0.1:4545 or ipc:///tmp/beam")
    p.add_argument("--socket", default="REQ", choices=["REQ", "SUB", "PULL"], type=str.upper)
    p.add_argument("--duration", type=float, default=None, help="seconds to run (default: Ctrl-C)")
    p.add_argument("--trains", type=int, default=None, help="stop after N trains")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between status lines")
    p.set_defaults(func=_handler)
