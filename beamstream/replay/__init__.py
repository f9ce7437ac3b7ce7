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

from beamstream.plugins import Registry, RegistryError
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
    "READERS",
]


READERS: Registry[Reader] = Registry("beamstream.readers", Reader, "reader")


def detect_format(path: str | Path) -> str:
    """The format of ``path``: the registered reader that says it can open it.

    Raises
    ------
    OSError
        When the path does not exist or an HDF5 file cannot be opened.
    FormatError
        When no reader recognises it (the message says what each expects).
    """
    from beamstream.formats.h5layout import open_h5

    p = Path(path)
    if not p.exists():
        raise OSError(f"{p}: no such file or directory")
    readers = sorted(READERS.load_all().values(), key=lambda c: (c.detect_order, c.format))
    if p.is_dir() or p.suffix.lower() in (".dat", ".tsv", ".txt"):
        found = [c.format for c in readers if c.can_open(p)]
    else:
        with open_h5(p) as f:
            found = [c.format for c in readers if c.can_open(p, f)]
    if found:
        return found[0]
    if p.is_dir():
        raise FormatError(
            f"{p}: unknown format (expected a European XFEL run directory of *.h5 files, or TIFF "
            "images with a tab-separated manifest.dat)"
        )
    raise FormatError(
        f"{p}: unknown HDF5 layout (expected a beamstream raw recording, a European XFEL file "
        "with INDEX/ and METADATA/, or LiX/py4xs <sample>/primary/data/<detector> groups)"
    )


def open_reader(path: str | Path, format: str | None = None, **options: Any) -> Reader:
    """A reader for ``path`` (format detected unless given); ``options`` go to the reader.

    Common options: ``trains`` (``START:STOP:STEP`` or ``id:...``, or a ``slice`` of
    positions such as ``slice(0, 20)``) and ``include``
    (``["SOURCE_GLOB[KEY_GLOB]", ...]``); ``stack_modules`` (euxfel), ``first_train_id``
    (lix, tiff), ``detector`` (tiff). ``format`` is a registered reader name
    (entry-point group ``beamstream.readers``) or ``package.module:Class``.
    """
    fmt = format or detect_format(path)
    try:
        cls = READERS.resolve(fmt)
    except RegistryError as e:
        raise ValueError(f"format {fmt!r}: {e}") from None
    return cls(path, **options)
