"""`TiffReader`: a folder of TIFF images with a tab-separated manifest, one row per frame.

The manifest (``manifest.dat``, or the only ``*.tsv``/``*.dat``/``*.txt`` file of the folder) has a
header line of column names (a leading ``%`` or ``#`` is ignored, as in the UDKM/nx5d example) and
one tab-separated row per frame. Each row becomes a train: the image as source ``detector`` (default
``tiff``), key ``image.data`` shaped ``(1, y, x)``, and every column as a scalar key of source
``manifest`` (numbers as floats, anything else as text). Images are named by a ``file`` /
``filename`` / ``image`` column when there is one, else they are the folder's ``*.tif``/``*.tiff``
files in name order (as many as rows). Timestamps come from a ``timestamp``/``time`` column when
present. Needs tifffile (or Pillow) to decode the images.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from beamstream.replay.base import FormatError, Reader
from beamstream.replay.select import Include, TrainRange, wanted
from beamstream.streamer.train import Train

__all__ = ["TiffReader", "find_manifest", "read_tiff", "MANIFEST_SOURCE"]

MANIFEST_SOURCE = "manifest"
_FILE_COLUMNS = ("file", "filename", "image", "path")
_TIME_COLUMNS = ("timestamp", "time")


def find_manifest(folder: Path) -> Path | None:
    """The manifest of a folder (None when there is none or several candidates)."""
    if (folder / "manifest.dat").is_file():
        return folder / "manifest.dat"
    cands = [p for ext in ("tsv", "dat", "txt") for p in sorted(folder.glob(f"*.{ext}"))]
    return cands[0] if len(cands) == 1 else None


def read_tiff(path: Path) -> np.ndarray:
    """Decode one TIFF image (tifffile, else Pillow)."""
    try:
        import tifffile
    except ImportError:
        tifffile = None
    if tifffile is not None:
        try:
            return np.asarray(tifffile.imread(path))
        except Exception as e:  # tifffile raises its own error types
            raise ValueError(f"{path}: not a readable TIFF image: {e}") from None
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("reading TIFF images needs tifffile: pip install tifffile") from None
    try:
        with Image.open(path) as im:
            return np.asarray(im)
    except Exception as e:
        raise ValueError(f"{path}: not a readable TIFF image: {e}") from None


def _value(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


class TiffReader(Reader):
    """Frames of a TIFF series with a manifest, as trains.

    Parameters
    ----------
    path
        The folder (or its manifest file).
    trains, include
        Selection (see `Reader`).
    detector
        Source name of the images.
    first_train_id
        Train id of the first row.
    """

    format = "tiff"
    detect_order = 0

    @classmethod
    def can_open(cls, path: Path, h5: Any = None) -> bool:
        if path.is_dir():
            return find_manifest(path) is not None
        return path.suffix.lower() in (".dat", ".tsv", ".txt")

    def __init__(
        self,
        path: str | Path,
        trains: str | TrainRange | None = None,
        include: Sequence[str | Include] | None = None,
        detector: str = "tiff",
        first_train_id: int = 1,
    ):
        super().__init__(path, trains, include)
        p = self.path
        manifest = p if p.is_file() else find_manifest(p)
        if manifest is None:
            raise FormatError(
                f"{p}: no manifest (expected manifest.dat or one tab-separated *.tsv/*.dat file "
                "with a header line and one row per TIFF image)"
            )
        self.folder = manifest.parent
        self.detector = detector
        lines = [ln for ln in manifest.read_text(errors="replace").splitlines() if ln.strip()]
        if not lines:
            raise FormatError(f"{manifest}: empty manifest (expected a header line and rows)")
        self.columns = [c.strip() for c in lines[0].lstrip("%#").split("\t")]
        self.rows = [ln.split("\t") for ln in lines[1:]]
        bad = [i for i, r in enumerate(self.rows) if len(r) != len(self.columns)]
        if bad:
            raise FormatError(
                f"{manifest}: row {bad[0] + 2} has {len(self.rows[bad[0]])} tab-separated "
                f"fields, the header has {len(self.columns)}"
            )
        lower = [c.lower() for c in self.columns]
        fcol = next((lower.index(c) for c in _FILE_COLUMNS if c in lower), None)
        if fcol is not None:
            self.files = [self.folder / r[fcol].strip() for r in self.rows]
        else:
            self.files = sorted(
                q for q in self.folder.iterdir() if q.suffix.lower() in (".tif", ".tiff")
            )
            if len(self.files) != len(self.rows):
                raise FormatError(
                    f"{self.folder}: {len(self.files)} TIFF files for {len(self.rows)} manifest "
                    "rows (expected one image per row, or a file column)"
                )
        self._tcol = next((lower.index(c) for c in _TIME_COLUMNS if c in lower), None)
        self.train_ids = np.arange(first_train_id, first_train_id + len(self.rows), dtype=np.int64)

    def _read(self, pos: int) -> Train | None:
        tid = int(self.train_ids[pos])
        row = self.rows[pos]
        data: dict[str, dict[str, Any]] = {}
        dims = {}
        if wanted(self.includes, self.detector, "image.data"):
            img = read_tiff(self.files[pos])
            data[self.detector] = {"image.data": img[np.newaxis] if img.ndim == 2 else img}
            dims[self.detector] = {"image.data": ("frame", "y", "x")}
        values = {c: _value(v.strip()) for c, v in zip(self.columns, row, strict=True)}
        data[MANIFEST_SOURCE] = values
        ts = None
        if self._tcol is not None and isinstance(values[self.columns[self._tcol]], float):
            ts = values[self.columns[self._tcol]]
        meta = {src: {"source": src, "timestamp.tid": tid} for src in data}
        return Train(tid, ts, data, meta, dims)
