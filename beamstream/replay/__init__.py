"""Replay: archived data as `Train` iterators, streamed in the Karabo Bridge protocol.

Readers (each an iterable of `Train` s with ``len()``, usable as a `Runner` source in-process):

* `RawReader`: beamstream raw recordings (the ``raw`` sink);
* `EuXFELReader`: European XFEL run directories through extra-data (``beamstream[euxfel]``);
* `LiXReader`: LiX/py4xs HDF5 (``<sample>/primary/data/<detector>``);
* `TiffReader`: a folder of TIFF images with a tab-separated manifest.

`open_reader` picks the reader for a path; `replay` streams one (``beamstream replay``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from beamstream.replay.base import FormatError, Reader
from beamstream.replay.select import Include, TrainRange, parse_include, parse_trains

__all__ = [
    "Reader",
    "FormatError",
    "Include",
    "TrainRange",
    "parse_include",
    "parse_trains",
    "open_reader",
    "detect_format",
    "FORMATS",
]

FORMATS = ("raw", "euxfel", "lix", "tiff")


def detect_format(path: str | Path) -> str:
    """The format of ``path``: ``raw``, ``euxfel``, ``lix`` or ``tiff``.

    Raises
    ------
    OSError
        When the path does not exist or an HDF5 file cannot be opened.
    FormatError
        When it is none of the known formats (the message says what each expects).
    """
    from beamstream.replay.tiff import find_manifest
    from beamstream.sinks.h5layout import open_h5

    p = Path(path)
    if not p.exists():
        raise OSError(f"{p}: no such file or directory")
    if p.is_dir():
        if find_manifest(p) is not None:
            return "tiff"
        if any(p.glob("*.h5")):
            return "euxfel"
        raise FormatError(
            f"{p}: unknown format (expected a European XFEL run directory of *.h5 files, or TIFF "
            "images with a tab-separated manifest.dat)"
        )
    if p.suffix.lower() in (".dat", ".tsv", ".txt"):
        return "tiff"
    with open_h5(p) as f:
        from beamstream.replay.lix import is_lix
        from beamstream.replay.raw import is_raw

        if is_raw(f):
            return "raw"
        if "INDEX" in f and "METADATA" in f:
            return "euxfel"
        if is_lix(f):
            return "lix"
    raise FormatError(
        f"{p}: unknown HDF5 layout (expected a beamstream raw recording, a European XFEL file "
        "with INDEX/ and METADATA/, or LiX/py4xs <sample>/primary/data/<detector> groups)"
    )


def open_reader(path: str | Path, format: str | None = None, **options: Any) -> Reader:
    """A reader for ``path`` (format detected unless given); ``options`` go to the reader.

    Common options: ``trains`` (``START:STOP:STEP`` or ``id:...``, or a ``slice`` of
    positions such as ``slice(0, 20)``) and ``include``
    (``["SOURCE_GLOB[KEY_GLOB]", ...]``); ``stack_modules`` (euxfel), ``first_train_id``
    (lix, tiff), ``detector`` (tiff).
    """
    fmt = format or detect_format(path)
    if fmt == "raw":
        from beamstream.replay.raw import RawReader as cls
    elif fmt == "euxfel":
        from beamstream.replay.euxfel import EuXFELReader as cls
    elif fmt == "lix":
        from beamstream.replay.lix import LiXReader as cls
    elif fmt == "tiff":
        from beamstream.replay.tiff import TiffReader as cls
    else:
        raise ValueError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
    return cls(path, **options)
