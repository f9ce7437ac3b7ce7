"""Simulated multi-module detectors (DSSC 1M, AGIPD 1M, JUNGFRAU 4M): one source per module.

Each module shows its own static scattering image (an arc of a ring with speckle), in the same
pump-probe delay scan as `DsscSimulator`: the frame pattern, the XGM pulse energies and the delay
are shared by all modules (they come from one `DsscSimulator` pulse model, so its XGM and delay
sources are sent unchanged). In pumped slots a ROI of every module is reduced by ``1 - s(delay)``.
Every train is a function of ``(seed, train_id)``; `part` generates only some of the sources, so
that several endpoints can each produce their own modules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from beamstream.simulate._common import FIRST_TRAIN_ID, SimulatedDetector
from beamstream.simulate._noise import NORMAL_TABLE, noisy_frames
from beamstream.simulate.dssc import (
    DEFAULT_DELAYS,
    DEFAULT_PATTERN,
    DsscSimulator,
    DsscTruth,
    PumpProbeSignal,
    is_dark,
    is_pumped,
)

__all__ = ["MegapixelSimulator", "MegapixelTruth", "DETECTOR_SPECS", "DetectorSpec"]


@dataclass(frozen=True)
class DetectorSpec:
    """How a multi-module detector is named and shaped on the wire."""

    modules: int
    module_shape: tuple[int, int]
    source: str  # with {module}
    key: str
    dtype: str
    first_module: int = 0  # JUNGFRAU modules are numbered from 1
    extra_geom: str = ""  # the extra-geom geometry class


DETECTOR_SPECS: dict[str, DetectorSpec] = {
    "dssc1m": DetectorSpec(
        16,
        (128, 512),
        "SCS_DET_DSSC1M-1/DET/{module}CH0:xtdf",
        "image.data",
        "uint16",
        extra_geom="DSSC_1MGeometry",
    ),
    "agipd1m": DetectorSpec(
        16,
        (512, 128),
        "SPB_DET_AGIPD1M-1/DET/{module}CH0:xtdf",
        "image.data",
        "float32",
        extra_geom="AGIPD_1MGeometry",
    ),
    "jungfrau4m": DetectorSpec(
        8,
        (512, 1024),
        "SPB_IRDA_JF4M/DET/JNGFR{module:02d}:daqOutput",
        "data.adc",
        "float32",
        first_module=1,
        extra_geom="JUNGFRAUGeometry",
    ),
}


@dataclass(frozen=True)
class MegapixelTruth:
    """Ground truth: the shared pulse model and one `DsscTruth` per module.

    ``modules[i]`` holds module ``module_numbers[i]``'s ``base``, ``dark`` and ``roi``; its
    ``expected_mean(delay, slot)`` is the mean raw frame of that module.
    """

    pattern: tuple[str, ...]
    delays: tuple[float, ...]
    trains_per_step: int
    signal: PumpProbeSignal
    module_numbers: tuple[int, ...]
    sources: tuple[str, ...]
    modules: tuple[DsscTruth, ...] = field(repr=False)

    def delay_of(self, train_index: int) -> float:
        return self.delays[(train_index // self.trains_per_step) % len(self.delays)]


class MegapixelSimulator(SimulatedDetector):
    """A multi-module detector in a pump-probe delay scan (see the module docstring).

    Parameters
    ----------
    kind
        ``"dssc1m"``, ``"agipd1m"`` or ``"jungfrau4m"`` (see `DETECTOR_SPECS`).
    seed, frames, first_train_id
        See `SimulatedDetector` (default 16 frames per train).
    modules
        How many modules (default: the detector's full count).
    pattern, delays, trains_per_step, signal, xgm_mean, xgm_jitter, read_noise
        As for `DsscSimulator`.
    """

    detector: ClassVar[str] = "megapixel"

    def __init__(
        self,
        kind: str = "dssc1m",
        seed: int = 0,
        frames: int = 16,
        first_train_id: int = FIRST_TRAIN_ID,
        *,
        modules: int | None = None,
        pattern: tuple[str, ...] | list[str] = DEFAULT_PATTERN,
        delays: tuple[float, ...] | list[float] = DEFAULT_DELAYS,
        trains_per_step: int = 10,
        signal: PumpProbeSignal | None = None,
        xgm_mean: float = 1500.0,
        xgm_jitter: float = 0.2,
        read_noise: float = 1.5,
    ):
        if kind not in DETECTOR_SPECS:
            raise ValueError(f"detector {kind!r}: expected one of {', '.join(DETECTOR_SPECS)}")
        super().__init__(seed, frames, first_train_id)
        self.spec = spec = DETECTOR_SPECS[kind]
        self.spec_name = kind
        self.detector = kind
        n = spec.modules if modules is None else int(modules)
        if not 1 <= n <= spec.modules:
            raise ValueError(f"modules: expected 1 to {spec.modules} for {kind}, got {modules!r}")
        self.pulses = DsscSimulator(
            seed,
            frames,
            first_train_id,
            pattern=pattern,
            delays=delays,
            trains_per_step=trains_per_step,
            signal=signal,
            xgm_mean=xgm_mean,
            xgm_jitter=xgm_jitter,
            read_noise=read_noise,
        )
        self.module_numbers = tuple(range(spec.first_module, spec.first_module + n))
        self.sources = tuple(spec.source.format(module=m) for m in self.module_numbers)
        self.source = spec.source  # with {module}
        self.image_key = spec.key
        self.xgm_source = self.pulses.xgm_source
        self.delay_source = self.pulses.delay_source
        pt = self.pulses.truth
        self._truth = MegapixelTruth(
            pt.pattern,
            pt.delays,
            pt.trains_per_step,
            pt.signal,
            self.module_numbers,
            self.sources,
            tuple(self._module_truth(i, pt) for i in range(n)),
        )
        self._slots = np.arange(self.frames) % len(pt.pattern)
        prefix = spec.key.rsplit(".", 1)[0]
        self._ids = {
            f"{prefix}.cellId": np.arange(self.frames, dtype=np.uint16),
            f"{prefix}.pulseId": np.arange(self.frames, dtype=np.uint64),
        }

    def _radius(self) -> np.ndarray | None:
        """Distance of every pixel from the beam ``(module, ss, fs)`` in units of the largest,
        from the detector's example geometry (extra-geom), or None without extra-geom."""
        if getattr(self, "_r", None) is None:
            try:
                from beamstream.geometry import build_geometry, pixel_positions
            except ImportError:  # pragma: no cover - extra-geom is optional at run time
                return None
            det = {"dssc1m": "DSSC_1M", "agipd1m": "AGIPD_1M", "jungfrau4m": "JUNGFRAU"}
            try:
                pos = pixel_positions(build_geometry({"detector": det[self.spec_name]}))
            except (ImportError, ValueError):
                return None
            r = np.hypot(pos[..., 0], pos[..., 1])
            self._r = r / r.max()
        return self._r

    def _module_truth(self, i: int, pt: DsscTruth) -> DsscTruth:
        ny, nx = self.spec.module_shape
        rng = self.static_rng(100 + i)
        radii = self._radius()
        if radii is not None:  # powder rings around the beam, across the modules
            r = radii[self.module_numbers[i] - self.spec.first_module]
            ring = 5.0 + 60.0 * np.exp(-0.5 * ((r - 0.55) / 0.04) ** 2)
            ring += 30.0 * np.exp(-0.5 * ((r - 0.3) / 0.02) ** 2)
        else:  # one ring per module
            yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
            r = np.hypot(yy - ny / 2, xx - nx / 2)
            radius = 0.35 * max(ny, nx)
            ring = 5.0 + 60.0 * np.exp(-0.5 * ((r - radius) / (0.1 * radius)) ** 2)
        base = (ring * rng.gamma(4.0, 0.25, (ny, nx))).astype(np.float32)
        dark0 = 40.0 + 3.0 * rng.standard_normal((ny, nx))
        dark = np.stack([dark0 + 0.5 * j for j in range(len(pt.pattern))]).astype(np.float32)
        roi = (slice(ny // 8, ny // 2), slice(nx // 8, nx // 2))
        return DsscTruth(
            pt.pattern, pt.delays, pt.trains_per_step, pt.signal, roi, base, dark,
            pt.read_noise, pt.adu_per_photon, pt.xgm_mean,
        )  # fmt: skip

    @property
    def truth(self) -> MegapixelTruth:
        return self._truth

    def train_truth(self, train_id: int) -> dict[str, Any]:
        """The shared per-train truth (delay, step, frame slots, XGM), as `DsscSimulator`'s."""
        return self.pulses.train_truth(train_id)

    # -- data ---------------------------------------------------------------------------------
    @property
    def slow_sources(self) -> tuple[str, ...]:
        """The XGM and delay sources (sent from their own endpoint when split)."""
        return (self.pulses.xgm_source, self.pulses.xgm_slow_source, self.pulses.delay_source)

    def part(self, train_id: int, sources: Iterable[str]) -> tuple[dict, dict]:
        """``data`` and ``dims`` of some sources of one train (module and slow sources)."""
        wanted = set(sources)
        t = self.train_truth(train_id)
        data: dict[str, dict[str, Any]] = {}
        dims: dict[str, dict[str, tuple[str, ...]]] = {}
        for i, src in enumerate(self.sources):
            if src in wanted:
                data[src] = self._module_data(i, train_id, t)
                dims[src] = {self.image_key: ("frame", "ss", "fs")}
        if wanted & set(self.slow_sources):
            slow, _ = self.pulses._train_slow(train_id, t)
            data.update({s: v for s, v in slow.items() if s in wanted})
        return data, dims

    def _train_data(self, train_id: int) -> tuple[dict, dict]:
        return self.part(train_id, (*self.sources, *self.slow_sources))

    def _module_data(self, i: int, train_id: int, t: dict[str, Any]) -> dict[str, Any]:
        mt = self._truth.modules[i]
        delay = t["delay"]
        nslot = len(mt.pattern)
        sig = np.empty((nslot, mt.base.size), np.float32)
        for j in range(nslot):
            name = mt.pattern[j]
            if is_dark(name):
                sig[j] = 0.0
            elif is_pumped(name):
                sig[j] = (mt.base * (1.0 - mt.signal(delay) * mt.roi_mask)).reshape(-1)
            else:
                sig[j] = mt.base.reshape(-1)
        sigma = np.sqrt(mt.read_noise**2 + mt.adu_per_photon * sig).astype(np.float32)
        raw = np.empty((self.frames, mt.base.size), np.uint16)
        seed = np.uint64(int(self.rng(train_id, 200 + i).integers(0, 2**63 - 1)))
        noisy_frames(
            raw,
            mt.dark.reshape(nslot, -1),
            sig,
            sigma,
            self._slots,
            t["frame_scale"],
            seed,
            0.0,
            65535.0,
            NORMAL_TABLE,
        )
        frames = raw if self.spec.dtype == "uint16" else raw.astype(self.spec.dtype)
        return {
            self.image_key: frames.reshape(self.frames, *mt.base.shape),
            **self._ids,
        }
