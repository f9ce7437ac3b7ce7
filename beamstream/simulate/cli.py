"""``beamstream simulate``: stream a simulated detector (argument parsing only)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["register", "main", "parse_scan", "DETECTORS"]

#: the detectors of `beamstream.simulate.serve.SIMULATORS` (listed here so that
#: ``beamstream --help`` need not import numba)
DETECTORS = ("saxs", "dssc", "rixs", "eiger")


def parse_scan(text: str) -> tuple[int, int]:
    """Parse ``NYxNX`` (e.g. ``20x30``) into ``(ny, nx)``."""
    try:
        ny, nx = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NYxNX such as 20x30, got {text!r}") from None
    if ny < 1 or nx < 1:
        raise argparse.ArgumentTypeError(f"expected positive sizes, got {text!r}")
    return ny, nx


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``simulate`` subcommand to ``subparsers`` (from ``add_subparsers``)."""
    p = subparsers.add_parser(
        "simulate",
        help="stream a simulated detector (saxs, dssc, rixs) over the Karabo Bridge protocol, "
        "or a DECTRIS Eiger stream (eiger)",
        description=(
            "Stream deterministic simulated trains (ground truth known from the seed) over the "
            "Karabo Bridge protocol 2.2. saxs: 1 Mpix powder rings at known q; dssc: one DSSC "
            "module in a pump-probe delay scan with XGM; rixs: hRIXS camera with single photons "
            "on a curved line; eiger: the saxs physics as a DECTRIS stream (V2 CBOR or legacy "
            "v1, PUSH) with start/image/end messages and map-scan positions in user_data. See "
            "docs/simulator.md and docs/dectris.md."
        ),
    )
    p.add_argument(
        "--detector",
        "-d",
        choices=DETECTORS,
        default="saxs",
        help="which detector to simulate (default: saxs)",
    )
    p.add_argument(
        "--endpoint",
        "-e",
        default="tcp://127.0.0.1:4545",
        help="ZeroMQ endpoint to bind (default: tcp://127.0.0.1:4545; ipc:// works)",
    )
    p.add_argument(
        "--socket",
        "-z",
        choices=["REP", "PUB", "PUSH"],
        default="REP",
        type=str.upper,
        help="socket type (default: REP, clients send 'next')",
    )
    p.add_argument(
        "--rate",
        "-r",
        type=float,
        default=10.0,
        help="trains per second; 0 = as fast as the client takes (default: 10)",
    )
    p.add_argument(
        "--trains",
        "-n",
        type=int,
        default=None,
        help="number of trains to send (default: until Ctrl-C)",
    )
    p.add_argument(
        "--frames",
        "-f",
        type=int,
        default=None,
        help="frames per train (default: saxs 1, dssc 100, rixs 1)",
    )
    p.add_argument(
        "--seed",
        "-s",
        type=int,
        default=0,
        help="seed of all randomness; the same seed gives the same trains (default: 0)",
    )
    p.add_argument(
        "--first-train-id",
        type=int,
        default=10_000_000_000,
        help="train id of the first train (default: 10000000000)",
    )
    p.add_argument(
        "--protocol",
        "-p",
        choices=["2.2"],
        default="2.2",
        help="Karabo Bridge protocol version written (default: 2.2)",
    )
    p.add_argument(
        "--scan",
        type=parse_scan,
        default=None,
        metavar="NYxNX",
        help="saxs and eiger: raster scan of NY x NX points, one train (image) per point (snake)",
    )
    p.add_argument(
        "--photons",
        type=float,
        default=None,
        help="rixs only: mean photons per frame (default: 1000)",
    )
    eiger = p.add_argument_group("eiger (DECTRIS stream) options")
    eiger.add_argument(
        "--stream",
        choices=["v2", "v1"],
        default="v2",
        help="DECTRIS stream version: v2 (CBOR, default) or v1 (legacy JSON)",
    )
    eiger.add_argument(
        "--compression",
        choices=["bslz4", "lz4", "none"],
        default="bslz4",
        help="image compression (default: bslz4)",
    )
    eiger.add_argument(
        "--channels",
        type=int,
        choices=[1, 2],
        default=1,
        help="threshold channels per image (v2 only; default 1)",
    )
    eiger.add_argument(
        "--series", type=int, default=1, help="series to send, each of --trains images (default 1)"
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress line on stderr")
    from beamstream.streamer.curve import add_server_arguments

    add_server_arguments(p)
    p.set_defaults(func=handler)
    return p


def handler(args: argparse.Namespace) -> int:
    """Run `simulate` with the parsed arguments; print a one-line summary."""
    if args.detector == "eiger":
        return _eiger(args)
    from beamstream.simulate.serve import simulate
    from beamstream.streamer.curve import server_from_args

    options: dict[str, Any] = {}
    if args.scan is not None:
        if args.detector != "saxs":
            print("beamstream simulate: --scan applies to --detector saxs only", file=sys.stderr)
            return 2
        options["scan"] = args.scan
    if args.photons is not None:
        if args.detector != "rixs":
            print("beamstream simulate: --photons applies to --detector rixs only", file=sys.stderr)
            return 2
        options["photons"] = args.photons

    def progress(s: dict[str, Any]) -> None:
        print(
            f"\rsent {s['sent']} trains, last {s['last_train_id']}, {s['rate']:.1f} Hz",
            end="",
            file=sys.stderr,
            flush=True,
        )

    def ready(endpoint: str) -> None:
        if not args.quiet:
            print(f"simulating {args.detector} on {endpoint} ({args.socket})", file=sys.stderr)

    try:
        s = simulate(
            args.detector,
            args.endpoint,
            socket=args.socket,
            rate=args.rate,
            trains=args.trains,
            frames=args.frames,
            seed=args.seed,
            protocol=args.protocol,
            progress=None if args.quiet else progress,
            first_train_id=args.first_train_id,
            ready=ready,
            curve=server_from_args(args),
            **options,
        )
    except (OSError, ValueError) as e:
        print(f"beamstream simulate: {e}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(file=sys.stderr)
    last = s["last_train_id"]
    print(
        f"{s['detector']}: sent {s['sent']} trains ({s['first_train_id']}..{last}) on "
        f"{s['endpoint']} ({s['socket']}) in {s['elapsed']:.1f} s, {s['rate']:.1f} Hz"
        + (", interrupted" if s["interrupted"] else "")
    )
    return 0


def _eiger(args: argparse.Namespace) -> int:
    """``simulate --detector eiger``: a DECTRIS stream on a PUSH socket."""
    from beamstream.dectris.simulate import EigerSimulator, serve

    if args.socket not in ("REP", "PUSH"):
        print("beamstream simulate: a DECTRIS stream is sent on a PUSH socket", file=sys.stderr)
        return 2
    try:
        sim = EigerSimulator(
            seed=args.seed,
            scan=args.scan,
            channels=args.channels,
            stream=args.stream,
            compression=args.compression,
        )
    except ValueError as e:
        print(f"beamstream simulate: {e}", file=sys.stderr)
        return 2
    images = args.trains or (args.scan[0] * args.scan[1] if args.scan else 100)

    def ready(endpoint: str) -> None:
        if not args.quiet:
            print(
                f"simulating eiger ({args.stream}, {args.compression}) on {endpoint} (PUSH)",
                file=sys.stderr,
            )

    try:
        s = serve(
            sim, args.endpoint, images=images, series=args.series, rate=args.rate, ready=ready
        )
    except (OSError, ValueError) as e:
        print(f"beamstream simulate: {e}", file=sys.stderr)
        return 1
    print(
        f"eiger: sent {s['sent']} images in {s['series']} series on {s['endpoint']} (PUSH) "
        f"in {s['elapsed']:.1f} s, {s['rate']:.1f} Hz"
        + (", interrupted" if s["interrupted"] else "")
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point: ``python -m beamstream.simulate.cli ...``."""
    parser = argparse.ArgumentParser(prog="beamstream")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
