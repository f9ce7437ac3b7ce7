"""`beamstream replay PATH`: stream archived data as if it were live."""

from __future__ import annotations

import argparse
import sys

__all__ = ["register", "main"]


def _handler(args: argparse.Namespace) -> int:
    from beamstream.replay import open_reader
    from beamstream.replay.server import parse_rate, replay
    from beamstream.streamer.curve import server_from_args

    rate = parse_rate(args.rate)  # check before opening anything
    if args.format == "nxmx" or (args.format is None and _is_nxmx(args.path)):
        return _replay_nxmx(args, rate)
    options = {"trains": args.trains, "include": args.include}
    if args.stack_modules:
        options["stack_modules"] = True
    with open_reader(args.path, args.format, **options) as reader:
        if len(reader) == 0:
            raise ValueError(f"{args.path}: no trains selected")
        print(reader.describe(), file=sys.stderr)
        s = replay(
            reader,
            endpoint=args.endpoint,
            socket=args.socket,
            rate=rate,
            loops=args.loop,
            dummy_timestamps=args.dummy_timestamps,
            progress=None if args.quiet else sys.stderr,
            linger=args.linger,
            curve=server_from_args(args),
        )
    print(
        f"sent {s['sent']} trains ({s['bytes'] / 1e6:.1f} MB) in {s['elapsed']:.1f} s: "
        f"{s['rate']:.1f} trains/s, {s['MBps']:.1f} MB/s; train ids {s['first_train_id']}.."
        f"{s['last_train_id']}; skipped {s['skipped']} unreadable"
    )
    return 130 if s["interrupted"] and s["sent"] == 0 else 0


def _is_nxmx(path: str) -> bool:
    try:
        from beamstream.dectris.replay import is_master
    except ImportError:  # without the dectris extra, NXmx files are not served
        return False
    return path.endswith(".h5") and is_master(path)


def _replay_nxmx(args: argparse.Namespace, rate: float | str) -> int:
    """An Eiger NXmx master file: served as a DECTRIS Stream V2 (PUSH)."""
    from beamstream.dectris.replay import replay_nxmx
    from beamstream.replay.select import parse_trains

    if args.socket != "PUSH":
        print("beamstream replay: an NXmx file is served as a DECTRIS stream: use --socket PUSH",
              file=sys.stderr)  # fmt: skip
        return 2
    s = replay_nxmx(args.path, endpoint=args.endpoint, rate=rate, loops=args.loop,
                    images=parse_trains(args.trains) if args.trains else None,
                    progress=None if args.quiet else sys.stderr)  # fmt: skip
    print(
        f"sent {s['sent']} images in {s['series']} series on {s['endpoint']} (PUSH, DECTRIS "
        f"V2) in {s['elapsed']:.1f} s: {s['rate']:.1f} images/s"
    )
    return 130 if s["interrupted"] and s["sent"] == 0 else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "replay",
        help="stream archived data (raw recordings, EuXFEL runs, LiX HDF5, TIFF series, Eiger "
        "NXmx as a DECTRIS stream)",
        description="Stream the trains of PATH in the Karabo Bridge protocol, as a live source "
        "would: a beamstream raw recording, a European XFEL run directory (extra-data), a "
        "LiX/py4xs HDF5 file or a folder of TIFF images with a tab-separated manifest.",
    )
    p.add_argument("path", help="file or directory to replay")
    p.add_argument(
        "--endpoint",
        default="tcp://127.0.0.1:4545",
        help="where to bind (default %(default)s; PORT or HOST:PORT accepted)",
    )
    p.add_argument(
        "--socket",
        default="REP",
        choices=["REP", "PUB", "PUSH"],
        type=str.upper,
        help="REP waits for each client request, PUSH blocks, PUB drops",
    )
    p.add_argument(
        "--rate",
        default="recorded",
        help="recorded (recorded spacing; train ids at 10 Hz), max, or trains/s",
    )
    p.add_argument(
        "--loop",
        type=int,
        default=1,
        metavar="N",
        help="send the data N times (0: forever), train ids increasing",
    )
    p.add_argument(
        "--trains",
        metavar="START:STOP:STEP",
        help="train positions (Python slice), or id:START:STOP:STEP for train ids",
    )
    p.add_argument(
        "--include",
        action="append",
        metavar="SOURCE_GLOB[KEY_GLOB]",
        help="send only matching sources/keys (repeatable)",
    )
    p.add_argument(
        "--dummy-timestamps",
        action="store_true",
        help="stamp each train with the wall-clock time when sent",
    )
    p.add_argument(
        "--format",
        help="input format: a registered reader (raw, euxfel, lix, tiff, plug-ins; default: "
        "detected), or nxmx: an Eiger master file, served as a DECTRIS V2 stream on PUSH",
    )
    p.add_argument(
        "--stack-modules",
        action="store_true",
        help="euxfel: stack detector modules into one <DET>/DET/APPEND source",
    )
    p.add_argument(
        "--linger",
        type=float,
        default=1.0,
        metavar="S",
        help="keep the socket open S seconds after the last train (default 1)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    from beamstream.streamer.curve import add_server_arguments

    add_server_arguments(p)
    p.set_defaults(func=_handler)


def main(argv: list[str] | None = None) -> int:
    """``python -m beamstream.replay.cli PATH ...``: the replay command on its own."""
    parser = argparse.ArgumentParser(prog="beamstream")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["replay", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (OSError, ValueError, ImportError) as e:
        print(f"beamstream replay: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
