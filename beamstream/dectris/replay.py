"""`beamstream replay MASTER.h5`: an Eiger NXmx master + data pair served as a DECTRIS V2 stream.

Paced (``recorded``: one image per ``frame_time``; ``max``; or images/s), looped (each loop is a
new series with the next series id) and selected (``--trains`` over image positions or
``id:...`` over image ids), on a bound PUSH socket, as the detector's DCU does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from .nxmx import NXmxStream
from .simulate import serve_series

__all__ = ["replay_nxmx", "is_master"]


def replay_nxmx(
    path: str | Path,
    *,
    endpoint: str,
    rate: float | str = "recorded",
    loops: int = 1,
    images: Any = None,
    stop_event: threading.Event | None = None,
    ready: Callable[[str], None] | None = None,
    progress: TextIO | None = None,
) -> dict[str, Any]:
    """Serve ``path`` (an NXmx master file) ``loops`` times (0: forever); a summary dict."""
    with NXmxStream(path, images) as stream:
        if len(stream) == 0:
            raise ValueError(f"{path}: no images selected")
        if rate == "recorded":
            ft = float(stream.header.get("frame_time") or 0.0)
            hz = 1.0 / ft if ft > 0 else 0.0
        else:
            hz = 0.0 if rate == "max" else float(rate)
        if progress is not None:
            print(f"{path}: {len(stream)} images of {stream.header.get('image_size_y')} x "
                  f"{stream.header.get('image_size_x')}, channels {', '.join(stream.channels)}; "
                  f"{'as fast as taken' if not hz else f'{hz:.1f} images/s'}",
                  file=progress)  # fmt: skip
        return serve_series(
            stream.messages, endpoint, series=loops, rate=hz, stop_event=stop_event, ready=ready
        )


def is_master(path: str | Path) -> bool:
    """True for an NXmx master file."""
    import h5py

    from .nxmx import is_nxmx

    try:
        with h5py.File(path, "r") as f:
            return is_nxmx(f)
    except OSError:
        return False
