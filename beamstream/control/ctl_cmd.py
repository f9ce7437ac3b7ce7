"""`beamstream ctl URL get|set|reset|versions|status|snapshot`: steer a running pipeline."""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

from beamstream.control.client import ControlClient, ControlError

__all__ = ["register", "parse_assignment"]


def parse_assignment(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE a TOML value (``200``, ``["a", "b"]``, ``"x"``); a VALUE that
    is not TOML is taken as a string (``mode=exact``)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"{text!r}: expected KEY=VALUE, e.g. processors.frames.rules[0].min=200")
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()
    return key.strip(), parsed


def _versions_table(versions: list[dict[str, Any]]) -> str:
    lines = [f"{'ver':>4} {'seg':>4} {'kind':<12} {'trains':>16} {'n':>6}  client / change"]
    for v in versions:
        first, last = v.get("first_train_id"), v.get("last_train_id")
        rng = "-" if first is None else f"{first}-{last if last is not None else ''}"
        lines.append(
            f"{v['number']:>4} {v['segment']:>4} {v['kind']:<12} {rng:>16} {v.get('trains', 0):>6}"
            f"  {v.get('client', '')}: {v.get('change', '') or '(start)'}"
        )
    return "\n".join(lines)


def _handler(args: argparse.Namespace) -> int:
    ctl = ControlClient(args.url, token=args.token, client=args.client)
    try:
        out = _do(ctl, args)
    except ControlError as e:
        print(f"beamstream ctl: refused ({e.status}): {e.message}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"beamstream ctl: cannot reach {args.url}: {e}", file=sys.stderr)
        return 1
    print(out)
    return 0


def _do(ctl: ControlClient, args: argparse.Namespace) -> str:
    if args.action == "get":
        cfg = ctl.config()
        if args.json:
            return json.dumps(cfg["config"], indent=2)
        return f"# config version {cfg['version']}\n{cfg['toml']}"
    if args.action == "set":
        if args.file:
            if args.assignments:
                raise ValueError("give either --file or KEY=VALUE assignments")
            answer = ctl.replace(Path(args.file).read_text())
        else:
            if not args.assignments:
                raise ValueError("set: give KEY=VALUE assignments or --file CONFIG.toml")
            answer = ctl.set(dict(parse_assignment(a) for a in args.assignments))
        return _describe(answer)
    if args.action == "reset":
        return _describe(ctl.reset())
    if args.action == "versions":
        versions = ctl.versions()
        return json.dumps(versions, indent=2) if args.json else _versions_table(versions)
    if args.action == "status":
        return json.dumps(ctl.status(), indent=2, default=str)
    return json.dumps(ctl.snapshot())


def _describe(v: dict[str, Any]) -> str:
    if v.get("unchanged"):
        return f"unchanged: version {v['number']}"
    state = (
        f"applied from train {v['first_train_id']}"
        if v.get("applied") and v.get("first_train_id") is not None
        else "pending (applies at the next train)"
    )
    return f"version {v['number']} ({v['kind']}, segment {v['segment']}): {state}"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ctl",
        help="steer a running pipeline (config, versions, reset)",
        description="Talk to the control API of a running `beamstream run` (its dashboard URL, "
        "or the --control-port URL with --no-dashboard). A change becomes a new config "
        "version applied at a train boundary; a refused change names what is wrong.",
    )
    p.add_argument("url", help="http://HOST:PORT of the run")
    p.add_argument("action", choices=["get", "set", "reset", "versions", "status", "snapshot"])
    p.add_argument(
        "assignments",
        nargs="*",
        metavar="KEY=VALUE",
        help="for set: dotted keys and TOML values, e.g. processors.frames.rules[0].min=200",
    )
    p.add_argument("--file", metavar="CONFIG", help="for set: replace the whole config")
    p.add_argument("--json", action="store_true", help="JSON output (get, versions)")
    p.add_argument(
        "--token", help="API token (default: $BEAMSTREAM_TOKEN); needed beyond 127.0.0.1"
    )
    p.add_argument("--client", default="ctl", help="name recorded with the change")
    p.set_defaults(func=_handler)
