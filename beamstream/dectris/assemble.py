"""Turn a closed `Group` of decompressed images into a `Train`.

One train per group: under the source name, ``image.<channel>`` ``(frame, y, x)`` per channel,
``image_id`` and ``start_time`` per frame, ``series_id``; scan positions (if configured) under
the positions source, one value per frame (NaN where the image had none). Images whose
decompression failed are left out (counted by the caller); a group left without images gives no
train.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from beamstream.streamer.train import Train

from .messages import Image
from .positions import PositionLookup
from .series import Group

__all__ = ["decode_image", "build_train", "consistent_images"]


def decode_image(image: Image) -> dict[str, np.ndarray]:
    """Decompress every channel of ``image`` (runs in the pool; the library drops the GIL)."""
    return {ch: arr.materialize() for ch, arr in image.data.items()}


def _stack(frames: list[np.ndarray]) -> np.ndarray:
    if len(frames) == 1:
        return frames[0][None]  # a view: no copy for one frame per train
    return np.stack(frames)


def build_train(
    group: Group,
    decoded: list[tuple[Image, Mapping[str, np.ndarray]]],
    *,
    name: str,
    positions: PositionLookup | None = None,
    positions_source: str = "positions",
    unmatched: Callable[[str], None] | None = None,
) -> Train | None:
    """The train of ``group`` from its decoded images (None if there are none); the images must
    have the same channels, shapes and dtypes (`consistent_images`)."""
    if not decoded:
        return None
    images = [img for img, _ in decoded]
    channels = list(decoded[0][1])
    det: dict[str, Any] = {}
    for ch in channels:
        det[f"image.{ch}"] = _stack([arrays[ch] for _, arrays in decoded])
    det["image_id"] = np.array([i.image_id for i in images], dtype=np.int64)
    det["start_time"] = np.array(
        [np.nan if i.start_time is None else i.start_time for i in images], dtype=np.float64
    )
    det["series_id"] = group.series.series_id
    data: dict[str, dict[str, Any]] = {name: det}
    if positions is not None:
        data[positions_source] = _positions(group, images, positions, unmatched)
    series = group.series
    t0 = images[0].start_time
    ts = series.arm_time + t0 if series.arm_time is not None and t0 is not None else time.time()
    meta = {
        src: {
            "source": src,
            "timestamp": ts,
            "timestamp.tid": group.train_id,
            "series_id": series.series_id,
            "series_unique_id": series.unique_id,
        }
        for src in data
    }
    dims = {name: {f"image.{ch}": ("frame", "y", "x") for ch in channels}}
    return Train(group.train_id, ts, data, meta, dims)


def consistent_images(
    decoded: list[tuple[Image, Mapping[str, np.ndarray]]],
    report: Callable[[str], None] | None,
) -> list[tuple[Image, Mapping[str, np.ndarray]]]:
    """The images that can be stacked with the first one; ``report("inconsistent_image")`` for
    each of the others."""
    if len(decoded) < 2:
        return decoded
    ref = {ch: (a.shape, a.dtype) for ch, a in decoded[0][1].items()}
    out = []
    for img, arrays in decoded:
        if {ch: (a.shape, a.dtype) for ch, a in arrays.items()} == ref:
            out.append((img, arrays))
        elif report is not None:
            report("inconsistent_image")
    return out


def _positions(
    group: Group,
    images: list[Image],
    lookup: PositionLookup,
    unmatched: Callable[[str], None] | None,
) -> dict[str, np.ndarray]:
    out = {m: np.full(len(images), np.nan) for m in lookup.motors}
    for k, img in enumerate(images):
        pos, reason = lookup.lookup(group.series, img)
        if pos is None:
            if unmatched is not None:
                unmatched(reason or "unmatched")
            continue
        for m, v in pos.items():
            if m in out:
                out[m][k] = v
    return out
