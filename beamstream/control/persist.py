"""The applied config saved beside the results, so a crashed run resumes with its last version.

For ``results.h5`` two files are written, each to a temporary file that is fsynced and renamed
into place (a crash leaves the previous complete file, never a torn one):

* ``results.versions.json``: the whole version log (every version's config and train range),
  read by ``beamstream run --resume``;
* ``results.applied.toml``: the last applied config, for people (``beamstream run`` takes it).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from beamstream.control.versions import VersionLog

__all__ = ["applied_paths", "save_applied", "load_applied", "atomic_write_text"]


def applied_paths(results: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``results.h5`` -> ``(results.versions.json, results.applied.toml)``."""
    p = Path(results)
    stem = p.name[: -len(p.suffix)] if p.suffix in (".h5", ".hdf5", ".nxs") else p.name
    return p.with_name(f"{stem}.versions.json"), p.with_name(f"{stem}.applied.toml")


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a fsynced temporary file renamed over it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def save_applied(results: str | os.PathLike[str], log: VersionLog) -> None:
    """Save the version log and the last applied config beside ``results``."""
    log_path, toml_path = applied_paths(results)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(log_path, log.to_json())
    applied = log.applied()
    if applied:
        atomic_write_text(toml_path, applied[-1].config_text)


def load_applied(results: str | os.PathLike[str]) -> VersionLog | None:
    """The version log saved beside ``results`` (None when there is none).

    Raises
    ------
    ValueError
        The file exists but is not a version log (the message names it).
    """
    log_path, _ = applied_paths(results)
    if not log_path.is_file():
        return None
    try:
        log = VersionLog.from_json(log_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, TypeError, KeyError, UnicodeDecodeError) as e:
        raise ValueError(f"{log_path}: not a beamstream version log: {e}") from None
    return log if len(log) else None
