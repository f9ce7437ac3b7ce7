"""A simulated DECTRIS Eiger streaming a SAXS/WAXS map scan (V2 CBOR or legacy v1).

The physics is the SAXS simulator's (`beamstream.simulate.saxs`): image ``k`` of a series
is its train ``first_train_id + k`` as uint32 counts, with a module-gap band and a few dead
pixels flagged in the pixel mask (their counts set to the uint32 maximum, as the detector does).
A second channel (``threshold_2``) holds ``floor(counts / 2)``. In a map scan, each image's
``user_data`` carries the motor positions ``x`` and ``y`` [mm]. The start message carries the
geometry (no tilts: the beam centre convention assumes normal incidence).
"""

from __future__ import annotations

import datetime as _dt
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from . import encode

__all__ = ["EigerSimulator", "serve", "serve_series", "SENTINEL"]

SENTINEL = np.uint32(0xFFFFFFFF)
CHANNELS = ("threshold_1", "threshold_2")
_ARM = _dt.datetime(2026, 1, 1, tzinfo=_dt.UTC)


class EigerSimulator:
    """Series of Eiger images from the SAXS simulator (see the module docstring).

    Parameters
    ----------
    seed
        Seed of everything random.
    scan
        ``(ny, nx)`` map scan (snake order), or None.
    channels
        1 or 2 threshold channels.
    stream
        ``"v2"`` or ``"v1"`` (one channel only).
    compression
        ``"bslz4"``, ``"lz4"`` or ``"none"``.
    shape
        Detector ``(rows, columns)`` (default 1024 x 1024).
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        scan: tuple[int, int] | None = None,
        channels: int = 1,
        stream: str = "v2",
        compression: str = "bslz4",
        shape: tuple[int, int] = (1024, 1024),
    ):
        from beamstream.simulate.geometry import Geometry  # physics, reused
        from beamstream.simulate.saxs import SaxsSimulator

        if channels not in (1, 2):
            raise ValueError(f"channels: expected 1 or 2, got {channels!r}")
        if stream not in ("v2", "v1"):
            raise ValueError(f"stream: expected 'v2' or 'v1', got {stream!r}")
        if stream == "v1" and channels != 1:
            raise ValueError("channels: the legacy (v1) stream has one image per frame")
        if compression not in ("bslz4", "lz4", "none"):
            raise ValueError(f"compression: expected bslz4, lz4 or none, got {compression!r}")
        ny, nx = shape
        g = Geometry(rot1=0.0, rot2=0.0, rot3=0.0, shape=(ny, nx),
                     poni1=(ny * 0.52) * 75e-6, poni2=(nx * 0.49) * 75e-6)  # fmt: skip
        self.saxs = SaxsSimulator(seed=seed, geometry=g, scan=scan)
        self.geometry = g
        self.stream = stream
        self.compression = None if compression == "none" else compression
        self.channels = CHANNELS[:channels] if stream == "v2" else ("data",)
        self.mask = np.zeros((ny, nx), np.uint32)
        gap = slice(ny // 2 - 4, ny // 2 + 4)
        self.mask[gap, :] = 1  # a module gap
        dead = self.saxs.static_rng(7).integers(0, ny * nx, 50)
        self.mask.reshape(-1)[dead] = 2
        self.frame_time = 0.01

    @property
    def truth(self) -> Any:
        """The SAXS simulator's truth (geometry, rings, scan maps)."""
        return self.saxs.truth

    def header_fields(self, n_images: int) -> dict[str, Any]:
        """The start message's plain fields (geometry, beam, timing, pixels)."""
        g = self.geometry
        ny, nx = g.shape
        return {
            "beam_center_x": g.poni2 / g.pixel2,
            "beam_center_y": g.poni1 / g.pixel1,
            "pixel_size_x": g.pixel2,
            "pixel_size_y": g.pixel1,
            "detector_translation": [0.0, 0.0, g.dist],
            "detector_distance": g.dist,
            "incident_wavelength": g.wavelength * 1e10,
            "incident_energy": g.energy_kev * 1000.0,
            "image_size_x": nx,
            "image_size_y": ny,
            "image_dtype": "uint32",
            "saturation_value": 2**20,
            "count_time": self.frame_time,
            "frame_time": self.frame_time,
            "number_of_images": n_images,
            "threshold_energy": {c: 6000.0 + 2000.0 * i for i, c in enumerate(self.channels)},
            "detector_description": "simulated EIGER2 1M",
            "sensor_material": "Si",
            "sensor_thickness": 0.00045,
        }

    def frames(self, image_id: int) -> dict[str, np.ndarray]:
        """The channels' uint32 images of image ``image_id``."""
        tid = self.saxs.first_train_id + image_id
        f = self.saxs.train(tid).data[self.saxs.source][self.saxs.image_key][0]
        counts = np.clip(f, 0, None).astype(np.uint32)
        counts[self.mask != 0] = SENTINEL
        out = {self.channels[0]: counts}
        if len(self.channels) == 2:
            second = counts // 2
            second[self.mask != 0] = SENTINEL
            out[self.channels[1]] = second
        return out

    def positions(self, image_id: int) -> dict[str, float] | None:
        """The motor positions sent in ``user_data`` (None without a scan)."""
        if self.saxs.truth.scan is None:
            return None
        scan = self.saxs.truth.scan
        data = self.saxs.train(self.saxs.first_train_id + image_id).data
        return {
            "x": float(data[scan.fast_source][scan.key]),
            "y": float(data[scan.slow_source][scan.key]),
        }

    def messages(self, n_images: int, series_id: int = 1) -> Iterator[tuple[str, list[bytes]]]:
        """``(kind, parts)`` of the start, ``n_images`` images and the end of one series."""
        uid = f"{series_id}-{uuid.uuid4()}"
        fields = self.header_fields(n_images)
        scan = self.saxs.truth.scan
        appendix = {"scan": list(scan.shape) if scan is not None else None}
        if self.stream == "v2":
            mask = {c: self.mask for c in self.channels}
            flat = {c: np.ones(self.geometry.shape, np.float32) for c in self.channels}
            start = encode.start_v2(
                series_id, uid, channels=self.channels, fields=fields, arm_date=_ARM,
                pixel_mask=mask, flatfield=flat, user_data=appendix,
            )  # fmt: skip
            yield "start", [start]
        else:
            yield (
                "start",
                encode.start_v1(
                    series_id, fields=fields, arm_date=_ARM, pixel_mask=self.mask, appendix=appendix
                ),
            )
        for k in range(n_images):
            yield "image", self.image_message(series_id, uid, k)
        end = [encode.end_v2(series_id, uid)] if self.stream == "v2" else encode.end_v1(series_id)
        yield "end", end

    def image_message(self, series_id: int, uid: str, image_id: int) -> list[bytes]:
        frames = self.frames(image_id)
        t0 = image_id * self.frame_time
        if self.stream == "v2":
            return [
                encode.image_v2(
                    series_id,
                    uid,
                    image_id,
                    frames,
                    compression=self.compression,
                    start_time=t0,
                    frame_time=self.frame_time,
                    user_data=self.positions(image_id),
                )
            ]
        return encode.image_v1(
            series_id,
            image_id,
            frames["data"],
            compression=self.compression,
            start_time=t0,
            frame_time=self.frame_time,
            appendix=self.positions(image_id),
        )


def serve(sim: EigerSimulator, endpoint: str, *, images: int, **options: Any) -> dict[str, Any]:
    """Bind a PUSH socket on ``endpoint`` and send series of ``images`` images of ``sim``
    (``options``: those of `serve_series`: ``series``, ``rate``, ``stop_event``, ...)."""
    return serve_series(lambda sid: sim.messages(images, sid), endpoint, **options)


def serve_series(
    make_series: Callable[[int], Iterator[tuple[str, list[bytes]]]],
    endpoint: str,
    *,
    series: int = 1,
    rate: float = 0.0,
    first_series_id: int = 1,
    stop_event: threading.Event | None = None,
    ready: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Send series as a detector does, on a bound PUSH socket.

    ``make_series(series_id)`` yields ``(kind, parts)`` of one series (start, images, end);
    ``series`` of them are sent (0: until stopped) with increasing series ids; ``rate``: images
    per second (0: as fast as the clients take them). Returns a summary (``sent`` images,
    ``series``, ``elapsed``, ``rate``, ``interrupted``).
    """
    import zmq

    stop = stop_event or threading.Event()
    sock = zmq.Context.instance().socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 2000)
    sock.set_hwm(100)
    sock.bind(endpoint)
    bound = sock.getsockopt_string(zmq.LAST_ENDPOINT)
    if ready is not None:
        ready(bound)
    summary = {"endpoint": bound, "socket": "PUSH", "sent": 0, "series": 0,
               "interrupted": False}  # fmt: skip
    t0 = time.monotonic()
    first = None
    try:
        s = 0
        while series == 0 or s < series:
            for kind, parts in make_series(first_series_id + s):
                if not _send(sock, parts, stop):
                    raise KeyboardInterrupt
                if kind != "image":
                    continue
                summary["sent"] += 1
                first = first or time.monotonic()
                if rate > 0:
                    due = first + summary["sent"] / rate
                    if stop.wait(max(0.0, due - time.monotonic())):
                        raise KeyboardInterrupt
            summary["series"] += 1
            s += 1
    except KeyboardInterrupt:
        summary["interrupted"] = True
    finally:
        sock.close()
    summary["elapsed"] = time.monotonic() - t0
    span = time.monotonic() - (first or t0)
    summary["rate"] = summary["sent"] / span if span > 0 else 0.0
    return summary


def _send(sock: Any, parts: list[bytes], stop: threading.Event) -> bool:
    import zmq

    while not stop.is_set():
        if sock.poll(200, zmq.POLLOUT):
            sock.send_multipart(parts, copy=False)
            return True
    return False
