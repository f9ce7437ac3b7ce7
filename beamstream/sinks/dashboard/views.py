"""Building blocks of the panels: the display controls and the detector-image figure (colour
bar, colour levels, ROI box, mask overlay), shared by result panels and the live image."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from bokeh.models import (
    BasicTickFormatter,
    BoxAnnotation,
    ColorBar,
    ColumnDataSource,
    LinearColorMapper,
)
from bokeh.palettes import Category10_10, Viridis256
from bokeh.plotting import figure

from beamstream.processors.base import Result
from beamstream.sinks.dashboard import prep
from beamstream.sinks.dashboard.prep import Selection

__all__ = ["WIDTH", "COLORS", "Controls", "ImageView", "readable_numbers", "colorbar_title"]

WIDTH = 520
COLORS = list(Category10_10)


def readable_numbers() -> BasicTickFormatter:
    """Plain numbers up to 1e9 (sums of many pixels), not "-5.000e+4"."""
    return BasicTickFormatter(power_limit_high=9, power_limit_low=-4)


def colorbar_title(label: str, controls: Controls) -> str:
    """``"photons"``, or ``"log10(photons)"`` on the log colour scale."""
    label = label or "value"
    return f"log10({label})" if controls.scale == "log" else label


@dataclass
class Controls:
    """The display settings shared by all panels of a document."""

    selection: Selection = field(default_factory=Selection)
    scale: str = "linear"  # or "log"
    levels: tuple[float, float] | None = None  # None: auto
    roi: tuple[int, int, int, int] | None = None  # (x0, x1, y0, y1) detector pixels
    max_image: int = 512


class ImageView:
    """A figure with one image glyph, a colour bar, an ROI box and an optional mask overlay."""

    def __init__(
        self,
        name: str,
        title: str,
        mask: np.ndarray | None = None,
        height: int = 380,
        match_aspect: bool = True,
        labels: tuple[str, str] = ("x", "y"),
    ):
        self.name = name
        self.source = ColumnDataSource(
            {
                "image": [np.zeros((1, 1), np.float32)],
                "x": [0.0],
                "y": [0.0],
                "dw": [1.0],
                "dh": [1.0],
            },
            name=f"image:{name}",
        )
        self.mapper = LinearColorMapper(palette=Viridis256, low=0, high=1, nan_color=(0, 0, 0, 0))
        self.fig = figure(
            title=title,
            width=WIDTH,
            height=height,
            # square pixels for detector images; a map's axes have different units (q, phi)
            match_aspect=match_aspect,
            name=f"figure:{name}",
            tools="pan,wheel_zoom,box_zoom,reset,hover,save",
            tooltips=[(labels[0], "$x{0.000}"), (labels[1], "$y{0.000}"), ("value", "@image")],
        )
        self.fig.image("image", "x", "y", "dw", "dh", source=self.source, color_mapper=self.mapper)
        self.colorbar = ColorBar(
            color_mapper=self.mapper, width=10, title="", title_standoff=6, name=f"colorbar:{name}"
        )
        self.fig.add_layout(self.colorbar, "right")
        # numeric edges from the start: Bokeh's default edges are models, and replacing a model
        # value makes the document recompute its whole model graph
        self.roi = BoxAnnotation(
            left=0,
            right=1,
            bottom=0,
            top=1,
            fill_alpha=0.0,
            line_color="red",
            line_width=2,
            visible=False,
        )
        self.fig.add_layout(self.roi)
        self.mask = mask
        self.mask_source: ColumnDataSource | None = None
        if mask is not None:
            self.mask_source = ColumnDataSource(dict(self.source.data), name=f"mask:{name}")
            overlay = LinearColorMapper(
                palette=["#00000000", "#ff0000"], low=0, high=1, nan_color=(0, 0, 0, 0)
            )
            self.fig.image(
                "image",
                "x",
                "y",
                "dw",
                "dh",
                source=self.mask_source,
                color_mapper=overlay,
                global_alpha=0.5,
            )
        self.shape: tuple[int, int] | None = None  # full-resolution (ny, nx) of the last image
        self._extent: tuple[float, float, float, float] | None = None

    def show(
        self,
        img: np.ndarray,
        controls: Controls,
        res: Result | None = None,
        data_dims: tuple[str, ...] = prep.PIXEL_DIMS,
        value_label: str | None = None,
    ) -> None:
        """Decimate, scale and put a 2-D (or ``(module, y, x)``) image into the source.

        The colour bar is titled ``value_label`` (default: the result's units), with "log10"
        when the colour scale is logarithmic.
        """
        full = prep.flatten_modules(img)
        small, _ = prep.decimate(full, controls.max_image)
        drawn, lo, hi = prep.color_levels(small, controls.scale, controls.levels)
        x, y, dw, dh, xl, yl = prep.image_geometry(res, full.shape, data_dims)
        pixels = prep.on_pixels(res, data_dims)
        if pixels and self.shape != full.shape and full.shape[0] and full.shape[1]:
            # a height that fits the detector's aspect (square pixels): no empty band
            frame = WIDTH - 130  # the plot frame of a WIDTH figure with axis and colour bar
            self.fig.height = int(min(max(70 + frame * full.shape[0] / full.shape[1], 240), 560))
        self.shape = full.shape
        self.source.data = {"image": [drawn], "x": [x], "y": [y], "dw": [dw], "dh": [dh]}
        if not pixels and self._extent != (x, y, dw, dh):
            # axes in coordinate units (q-phi, energy, motor positions): the image's extent,
            # set when it changes (the auto range would include the origin of the placeholder)
            self._extent = (x, y, dw, dh)
            self.fig.x_range.update(start=x, end=x + dw)
            self.fig.y_range.update(start=y, end=y + dh)
        self.mapper.update(low=lo, high=hi)
        title = colorbar_title(value_label or (res.units if res is not None else ""), controls)
        if self.colorbar.title != title:
            self.colorbar.title = title
        self.fig.xaxis.axis_label, self.fig.yaxis.axis_label = xl, yl
        if pixels and controls.roi is not None:
            x0, x1, y0, y1 = controls.roi
            self.roi.update(left=x0, right=x1, bottom=y0, top=y1, visible=True)
        else:
            self.roi.visible = False
        if self.mask_source is not None and pixels:
            m = prep.flatten_modules(self.mask)
            if m.shape == full.shape:
                mm, _ = prep.decimate(m.astype(np.float32), controls.max_image, "max")
                self.mask_source.data = {"image": [mm], "x": [x], "y": [y], "dw": [dw], "dh": [dh]}
