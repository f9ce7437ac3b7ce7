"""Optional ZeroMQ CURVE security: encryption and client authentication (off by default).

ZeroMQ's CURVE mechanism (CurveZMQ) encrypts every message and proves the server's identity to
the client (the client must know the server's public key). With a directory of authorized
client public keys, the server also admits only those clients (ZeroMQ's ZAP authentication, run
by pyzmq's `zmq.auth.thread.ThreadAuthenticator`).

Keys are Z85-encoded key pairs in ZeroMQ's certificate files, made by ``beamstream keys DIR``
(`generate_keys`): ``server.key`` (public, give it to clients), ``server.key_secret`` (the
source's), ``client.key_secret`` (a client's), and ``authorized/client.key`` (the public keys
the server admits).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

if TYPE_CHECKING:
    from beamstream.config import SourceConfig

__all__ = [
    "CurveClient",
    "CurveServer",
    "generate_keys",
    "load_key",
    "curve_client_for",
    "curve_available",
    "add_server_arguments",
    "server_from_args",
]

log = logging.getLogger(__name__)


def curve_available() -> bool:
    """Whether this libzmq was built with CURVE (libsodium or tweetnacl)."""
    return bool(zmq.has("curve"))


def load_key(path: str | os.PathLike[str], secret: bool = False) -> tuple[bytes, bytes | None]:
    """``(public, secret)`` from a ZeroMQ certificate file (secret None for a public one).

    Raises
    ------
    ValueError
        Naming the file, when it is missing or holds no key (or no secret key when
        ``secret``).
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: no such key file (make keys with `beamstream keys DIR`)")
    try:
        public, sec = zmq.auth.load_certificate(p)
    except (OSError, ValueError) as e:
        raise ValueError(f"{p}: not a ZeroMQ certificate file ({e})") from None
    if secret and not sec:
        raise ValueError(f"{p}: holds no secret key (use the .key_secret file)")
    return public, sec


@dataclass(frozen=True)
class CurveClient:
    """A client's CURVE keys: the server's public key and the client's own key pair."""

    server_public: bytes
    public: bytes
    secret: bytes

    @classmethod
    def from_files(cls, server_key: str | os.PathLike[str], client_key: str | os.PathLike[str]):  # noqa: ANN206
        """From the server's public key file and the client's secret key file."""
        server_public, _ = load_key(server_key)
        public, secret = load_key(client_key, secret=True)
        return cls(server_public, public, secret)  # type: ignore[arg-type]

    def apply(self, sock: zmq.Socket) -> None:
        """Make ``sock`` a CURVE client (before it connects)."""
        sock.curve_serverkey = self.server_public
        sock.curve_publickey = self.public
        sock.curve_secretkey = self.secret


@dataclass(frozen=True)
class CurveServer:
    """A server's CURVE key pair and, optionally, the directory of client keys it admits."""

    public: bytes
    secret: bytes
    authorized: Path | None = None

    @classmethod
    def from_files(
        cls, secret_key: str | os.PathLike[str], authorized: str | os.PathLike[str] | None = None
    ) -> CurveServer:
        """From the server's secret key file and a directory of client public keys (None:
        any client that knows the server's public key)."""
        public, secret = load_key(secret_key, secret=True)
        auth = Path(authorized) if authorized is not None else None
        if auth is not None and not auth.is_dir():
            raise ValueError(f"{auth}: no such directory of authorized client keys")
        return cls(public, secret, auth)  # type: ignore[arg-type]

    def apply(self, sock: zmq.Socket) -> ThreadAuthenticator | None:
        """Make ``sock`` a CURVE server (before it binds); returns the started authenticator
        (stop it when the socket closes) when clients are restricted."""
        authenticator = None
        if self.authorized is not None:
            authenticator = ThreadAuthenticator(sock.context, log=log)
            authenticator.start()
            authenticator.configure_curve(domain="*", location=str(self.authorized))
        sock.curve_secretkey = self.secret
        sock.curve_publickey = self.public
        sock.curve_server = True
        return authenticator


def generate_keys(directory: str | os.PathLike[str], clients: int = 1) -> dict[str, Path]:
    """Make a server key pair and ``clients`` client key pairs in ``directory``.

    Returns the paths: ``server`` / ``server_secret``, ``client`` / ``client_secret`` (then
    ``client2`` ...), and ``authorized`` (a directory holding the clients' public keys). Existing
    files are never overwritten.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    auth = d / "authorized"
    auth.mkdir(exist_ok=True)
    names = ["server"] + ["client" if i == 0 else f"client{i + 1}" for i in range(clients)]
    out: dict[str, Path] = {"authorized": auth}
    for name in names:
        public, secret = d / f"{name}.key", d / f"{name}.key_secret"
        if public.exists() or secret.exists():
            raise ValueError(f"{public}: exists already (keys are never overwritten)")
        zmq.auth.create_certificates(d, name)
        secret.chmod(0o600)
        out[name], out[f"{name}_secret"] = public, secret
        if name != "server":
            shutil.copy(public, auth / public.name)
    return out


def curve_client_for(source: SourceConfig, path: str = "<string>") -> CurveClient | None:
    """The CURVE client keys of a ``[source]`` table (None: CURVE off).

    Relative key paths are relative to the config file at ``path``.
    """
    if source.curve_server_key is None and source.curve_client_key is None:
        return None
    if source.curve_server_key is None or source.curve_client_key is None:
        raise ValueError(f"{path}: source: curve_server_key and curve_client_key go together")
    base = Path(path).parent if not path.startswith("<") else Path()
    return CurveClient.from_files(base / source.curve_server_key, base / source.curve_client_key)


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """``--curve-secret`` and ``--curve-clients`` for commands that serve trains."""
    parser.add_argument(
        "--curve-secret",
        metavar="FILE",
        help="serve with CURVE encryption using this server secret key file (made by "
        "`beamstream keys DIR`: DIR/server.key_secret); clients need DIR/server.key",
    )
    parser.add_argument(
        "--curve-clients",
        metavar="DIR",
        help="with --curve-secret: admit only clients whose public key file is in DIR "
        "(e.g. DIR/authorized from `beamstream keys`)",
    )


def server_from_args(args: argparse.Namespace) -> CurveServer | None:
    """The `CurveServer` of parsed `add_server_arguments` options (None: CURVE off)."""
    if args.curve_secret is None:
        if args.curve_clients is not None:
            raise ValueError("--curve-clients needs --curve-secret")
        return None
    return CurveServer.from_files(args.curve_secret, args.curve_clients)
