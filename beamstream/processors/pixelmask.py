"""`PixelMask`: a static detector pixel mask; masked pixels become NaN for what follows.

The accumulators treat NaN pixels as a dynamic mask (neither summed nor counted), so a mask set
here removes hot, dead or shadowed pixels from every later result. Frames are converted to
float32 once (integer data has no NaN). The dashboard's mask editor writes such masks (``.npy``,
True = masked, shaped like one frame) and applies them as a config change.

Config::

    [[processors]]
    type = "pixel_mask"
    mask = "mask.npy"
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from beamstream.processors.base import TrainView, Transform
from beamstream.processors.params import ParamError

__all__ = ["PixelMask", "read_pixel_mask"]


def read_pixel_mask(path: str | Path) -> np.ndarray:
    """A boolean mask from a ``.npy`` file (bool, or 0/1 integers), True = masked."""
    p = Path(path)
    if p.suffix.lower() != ".npy":
        raise ParamError("mask", "a .npy file", str(path))
    try:
        mask = np.load(p, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise ParamError("mask", "a readable .npy file", f"{path}: {e}") from None
    if mask.dtype.kind not in "biu" or mask.ndim not in (2, 3):
        raise ParamError("mask", "a 2-D or 3-D bool array", f"{mask.dtype} {mask.shape}")
    if mask.dtype.kind != "b" and mask.size and not np.isin(mask, (0, 1)).all():
        raise ParamError("mask", "only 0 and 1 in an integer mask", str(path))
    return mask.astype(bool)


class PixelMask(Transform):
    """Set the masked pixels of every frame to NaN.

    Parameters
    ----------
    mask
        ``.npy`` file, True = masked, shaped like one frame (``(y, x)`` or ``(module, y, x)``).
    frame_shape
        The configured frame shape (set by the pipeline): checked against the mask at once.
    name
        Instance name.
    """

    def __init__(
        self,
        mask: str | None = None,
        frame_shape: Sequence[int] | None = None,
        slots: Any = None,
        name: str = "pixel_mask",
    ):
        if not isinstance(mask, str) or not mask:
            raise ParamError("mask", "a .npy file", mask)
        self.path = mask
        self.mask = read_pixel_mask(mask)
        if frame_shape is not None and tuple(frame_shape) != self.mask.shape:
            raise ParamError("mask", f"shape {tuple(frame_shape)}", self.mask.shape)
        self.name = name
        self.masked = int(self.mask.sum())

    def describe(self) -> str:
        return f"pixel mask {self.path} ({self.masked} pixels masked)"

    def __call__(self, view: TrainView) -> TrainView:
        if view.frames is None:
            return view
        if view.frames.shape[1:] != self.mask.shape:
            raise ValueError(
                f"frames {view.frames.shape[1:]} do not fit the mask {self.mask.shape}"
            )
        frames = view.frames.astype(np.float32, copy=True)
        frames[:, self.mask] = np.nan
        view.frames = frames
        return view
