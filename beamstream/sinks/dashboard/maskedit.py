"""`MaskEditor`: the dashboard's pixel-mask editor (boxes, threshold, load/save, apply).

Boxes drawn in *mask* mode and a threshold on the latest image build a boolean mask (True =
masked) shaped like one frame; *load* / *save* read and write ``.npy`` files in the run's output
folder only; *apply mask* saves it there and requests a config change making it the run's
``pixel_mask`` (through the run's controller, like every steering control).
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from bokeh.layouts import column, row
from bokeh.models import Button, Div, NumericInput, TextInput

from beamstream.control.edits import mask_change, roi_from_geometry

__all__ = ["MaskEditor"]


class MaskEditor:
    """The mask editor's widgets and state (see the module docstring).

    Parameters
    ----------
    control
        The run's controller (its ``roots[0]`` is the output folder; its config is changed).
    latest_image
        Returns the latest displayed image (full resolution).
    message
        The panel's message `Div`.
    request
        Sends a change off the server thread (the steering panel's).
    """

    def __init__(
        self,
        control: Any,
        latest_image: Callable[[], np.ndarray | None],
        message: Div,
        request: Callable[[Any], None],
    ):
        self.control = control
        self.latest_image = latest_image
        self.message = message
        self.request = request
        self.mask: np.ndarray | None = None
        self._widgets()
        self.layout = column(
            row(self.threshold, self.from_threshold, self.clear_mask),
            row(self.mask_path, self.load_mask, self.save_mask, self.apply_mask),
            self.mask_info,
        )

    def _text(self) -> str:
        return self.control.current_config()[1]

    def _widgets(self) -> None:
        self.threshold = NumericInput(title="mask pixels above", value=None, width=130)
        self.from_threshold = Button(label="mask by threshold", width=140)
        self.from_threshold.on_click(self._threshold_mask)
        self.clear_mask = Button(label="clear mask", width=100)
        self.clear_mask.on_click(lambda: self._set_mask(None))
        self.mask_path = TextInput(title="mask file (.npy)", value="mask.npy", width=200)
        self.load_mask = Button(label="load", width=60)
        self.load_mask.on_click(self._load_mask)
        self.save_mask = Button(label="save", width=60)
        self.save_mask.on_click(lambda: self._save_mask())
        self.apply_mask = Button(label="apply mask", button_type="primary", width=110)
        self.apply_mask.on_click(self._apply_mask)
        self.mask_info = Div(text="mask: none", name="mask_info")

    def _shape(self) -> tuple[int, ...] | None:
        img = self.latest_image()
        return None if img is None else img.shape

    def _set_mask(self, mask: np.ndarray | None) -> None:
        self.mask = mask
        n = 0 if mask is None else int(mask.sum())
        self.mask_info.text = "mask: none" if mask is None else f"mask: {n} pixels masked"

    def add_geometry(self, geometry: dict[str, Any]) -> None:
        shape = self._shape()
        roi = roi_from_geometry(geometry, "m")
        if shape is None or roi is None or "box" not in roi:
            self.message.text = "draw mask boxes on a detector image"
            return
        mask = self.mask if self.mask is not None else np.zeros(shape, bool)
        x0, x1, y0, y1 = roi["box"]
        mask = mask.copy()
        mask[y0:y1, x0:x1] = True
        self._set_mask(mask)

    def _threshold_mask(self) -> None:
        img = self.latest_image()
        if img is None or self.threshold.value is None:
            self.message.text = "a threshold needs a value and a latest image"
            return
        with np.errstate(invalid="ignore"):
            above = np.asarray(img) > float(self.threshold.value)
        self._set_mask(above if self.mask is None else self.mask | above)

    def _folder(self) -> Path:
        roots = getattr(self.control, "roots", None) or [Path.cwd()]
        return Path(roots[0])

    def _mask_file(self) -> Path | None:
        name = Path(self.mask_path.value.strip() or "mask.npy").name  # inside the output folder
        if not name.endswith(".npy"):
            self.message.text = "mask files are .npy"
            return None
        return self._folder() / name

    def _load_mask(self) -> None:
        path = self._mask_file()
        if path is None:
            return
        try:
            self._set_mask(np.load(path, allow_pickle=False).astype(bool))
        except (OSError, ValueError) as e:
            self.message.text = f"cannot load {html.escape(str(path))}: {html.escape(str(e))}"

    def _save_mask(self, name: str | None = None) -> Path | None:
        if self.mask is None:
            self.message.text = "no mask to save"
            return None
        path = self._folder() / name if name else self._mask_file()
        if path is None:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, self.mask)
        self.message.text = f"mask saved to {html.escape(str(path))}"
        return path

    def _apply_mask(self) -> None:
        path = self._save_mask(f"mask-{time.strftime('%Y%m%dT%H%M%S')}.npy")
        if path is not None:
            self.request(mask_change(self._text(), str(path.resolve())))
