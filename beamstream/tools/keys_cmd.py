"""`beamstream keys DIR`: make CURVE key pairs for encrypted, authenticated streams."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def _handler(args: argparse.Namespace) -> int:
    from beamstream.streamer.curve import curve_available, generate_keys

    if not curve_available():
        raise ValueError("this ZeroMQ library has no CURVE support (built without libsodium)")
    paths = generate_keys(args.directory, clients=args.clients)
    d = args.directory
    print(f"server keys: {paths['server']} (public: give to clients), {paths['server_secret']}")
    for name in sorted(k for k in paths if k.startswith("client") and "secret" not in k):
        print(f"client keys: {paths[name]}, {paths[name + '_secret']}")
    print(f"authorized clients: {paths['authorized']}")
    print(
        f"serve:   beamstream simulate --curve-secret {d}/server.key_secret "
        f"--curve-clients {d}/authorized ...\n"
        f'receive: [source] curve_server_key = "{d}/server.key", '
        f'curve_client_key = "{d}/client.key_secret"'
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "keys",
        help="make CURVE keys for encrypted, authenticated streams",
        description="Make a server key pair and client key pairs (ZeroMQ CURVE certificates) "
        "in DIR, and DIR/authorized holding the clients' public keys. A source serving with "
        "--curve-secret DIR/server.key_secret --curve-clients DIR/authorized admits only those "
        "clients; a pipeline receives with [source] curve_server_key and curve_client_key. "
        "Existing key files are never overwritten. See docs/reliability.md.",
    )
    p.add_argument("directory", metavar="DIR", help="where the key files go")
    p.add_argument("--clients", type=int, default=1, help="client key pairs to make (1)")
    p.set_defaults(func=_handler)
