"""A simulated DSSC module in a pump-probe delay scan (SCS-like), with an XGM and a delay line.

Frames follow a repeating pattern of slots (default ``pumped, pumped_dark, unpumped,
unpumped_dark``); slots whose name contains ``"dark"`` have no FEL pulse. A FEL frame shows a
static scattering image ``base`` (two arcs of a ring with speckle), scaled by its pulse's relative
XGM intensity; in pumped slots the image inside a ROI is reduced by the factor ``1 - s(delay)``
with a known `PumpProbeSignal` ``s``. The delay steps through a list of values, ``trains_per_step``
trains each, repeating. Each frame adds a per-slot dark offset and Gaussian noise (read noise plus
photon noise) and is rounded to uint16.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from beamstream.simulate._common import FIRST_TRAIN_ID, SimulatedDetector
from beamstream.simulate._noise import NORMAL_TABLE, noisy_frames

__all__ = [
    "DEFAULT_PATTERN",
    "DEFAULT_DELAYS",
    "PumpProbeSignal",
    "DsscTruth",
    "DsscSimulator",
    "xgm_frame_indices",
]

DEFAULT_PATTERN = ("pumped", "pumped_dark", "unpumped", "unpumped_dark")
#: pump-probe delays [ps]
DEFAULT_DELAYS = (-1.0, -0.5, -0.2, 0.0, 0.2, 0.5, 1.0, 2.0, 5.0)
MODULE_SHAPE = (128, 512)
XGM_LENGTH = 1000


def is_dark(slot: str) -> bool:
    """A slot without FEL pulse (its name contains ``"dark"``)."""
    return "dark" in slot


def is_pumped(slot: str) -> bool:
    """A pumped slot (its name contains ``"pumped"`` but not ``"unpumped"``)."""
    return "pumped" in slot and "unpumped" not in slot


def xgm_frame_indices(nbunches: int, pattern: tuple[str, ...] | list[str]) -> np.ndarray:
    """The detector frame of each XGM pulse (dssc_process ``calc_xgm_frame_indices``).

    Examples
    --------
    >>> xgm_frame_indices(4, DEFAULT_PATTERN).tolist()
    [0, 2, 4, 6]
    """
    fel = [i for i, name in enumerate(pattern) if not is_dark(name)]
    if not fel or nbunches <= 0:
        return np.zeros(0, dtype=np.int64)
    frame_max = nbunches * len(pattern) // len(fel)
    idx = np.concatenate([np.arange(i, frame_max, len(pattern)) for i in fel])
    return np.sort(idx)[:nbunches]


@dataclass(frozen=True)
class PumpProbeSignal:
    """The relative pump-induced intensity drop in the ROI as a function of delay ``t`` [ps].

    ``s(t) = amplitude * (1 + erf((t - t0) / (sqrt(2) rise))) / 2
    * (plateau + (1 - plateau) * exp(-max(t - t0, 0) / tau))``:
    a Gaussian-smoothed step at ``t0`` followed by a partial exponential recovery.
    """

    amplitude: float = 0.4
    t0: float = 0.0
    rise: float = 0.15
    tau: float = 1.0
    plateau: float = 0.3

    def __call__(self, delay: float | np.ndarray) -> float | np.ndarray:
        t = np.asarray(delay, dtype=np.float64) - self.t0
        erf = np.vectorize(math.erf, otypes=[np.float64])
        step = 0.5 * (1.0 + erf(t / (math.sqrt(2.0) * self.rise)))
        recovery = self.plateau + (1.0 - self.plateau) * np.exp(-np.maximum(t, 0.0) / self.tau)
        out = self.amplitude * step * recovery
        return float(out) if out.ndim == 0 else out


@dataclass(frozen=True)
class DsscTruth:
    """The ground truth of a `DsscSimulator`.

    Attributes
    ----------
    pattern
        Slot names of the frame pattern.
    delays
        The delay of every scan step [ps].
    trains_per_step
        Trains per delay step.
    signal
        The pump-probe signal ``s(delay)``.
    roi
        ``(ss slice, fs slice)`` of the pumped region.
    base
        ``(ss, fs)`` float32 unpumped dark-corrected image at the mean XGM intensity [ADU].
    dark
        ``(nslot, ss, fs)`` float32 dark offset of every slot [ADU].
    read_noise, adu_per_photon
        Noise model: sigma^2 = read_noise^2 + adu_per_photon * signal.
    xgm_mean
        Mean XGM pulse energy [uJ]; frames scale with ``xgm / xgm_mean``.
    """

    pattern: tuple[str, ...]
    delays: tuple[float, ...]
    trains_per_step: int
    signal: PumpProbeSignal
    roi: tuple[slice, slice]
    base: np.ndarray = field(repr=False)
    dark: np.ndarray = field(repr=False)
    read_noise: float = 1.5
    adu_per_photon: float = 1.0
    xgm_mean: float = 1500.0

    @property
    def roi_mask(self) -> np.ndarray:
        """``(ss, fs)`` bool: the pumped region."""
        mask = np.zeros(self.base.shape, dtype=bool)
        mask[self.roi] = True
        return mask

    def signal_image(self, delay: float, slot: int | str) -> np.ndarray:
        """Noise-free dark-corrected image of a slot at a delay (float64, mean XGM)."""
        name = self.pattern[slot] if isinstance(slot, int) else slot
        if is_dark(name):
            return np.zeros(self.base.shape)
        img = self.base.astype(np.float64)
        if is_pumped(name):
            img = img * (1.0 - self.signal(delay) * self.roi_mask)
        return img

    def expected_mean(self, delay: float, slot: int | str) -> np.ndarray:
        """The expected mean raw frame of a slot at a delay: dark + signal (float64, ADU)."""
        j = slot if isinstance(slot, int) else self.pattern.index(slot)
        return self.dark[j].astype(np.float64) + self.signal_image(delay, j)

    def delay_of(self, train_index: int) -> float:
        """The delay of the train ``train_index`` trains after the first."""
        return self.delays[(train_index // self.trains_per_step) % len(self.delays)]


class DsscSimulator(SimulatedDetector):
    """Simulated DSSC module ``SCS_DET_DSSC1M-1/DET/0CH0:xtdf``: uint16 ``(frame, ss, fs)``.

    Parameters
    ----------
    seed, frames, first_train_id
        See `SimulatedDetector` (default 100 frames per train).
    pattern
        Frame pattern slot names (``"dark"`` in a name: no FEL).
    delays
        Delay values [ps] stepped through, repeating.
    trains_per_step
        Trains per delay step.
    signal
        The pump-probe signal function.
    roi
        ``(ss0, ss1, fs0, fs1)`` of the pumped region.
    xgm_mean, xgm_jitter
        Mean pulse energy [uJ] and relative rms of the gamma-distributed pulse energies.
    read_noise, adu_per_photon
        Noise model.
    xgm_fill
        The value of the invalid entries of the 1000-long XGM array (1.0, as European XFEL's).
    """

    detector = "dssc"
    source = "SCS_DET_DSSC1M-1/DET/0CH0:xtdf"
    image_key = "image.data"
    xgm_source = "SCS_BLU_XGM/XGM/DOOCS:output"
    xgm_key = "data.intensityTD"
    xgm_slow_source = "SCS_BLU_XGM/XGM/DOOCS"
    delay_source = "SCS_ILH_LAS/MDL/OPTICALDELAY_PP800"
    delay_key = "actualPosition"

    def __init__(
        self,
        seed: int = 0,
        frames: int = 100,
        first_train_id: int = FIRST_TRAIN_ID,
        *,
        pattern: tuple[str, ...] | list[str] = DEFAULT_PATTERN,
        delays: tuple[float, ...] | list[float] = DEFAULT_DELAYS,
        trains_per_step: int = 10,
        signal: PumpProbeSignal | None = None,
        roi: tuple[int, int, int, int] = (16, 112, 392, 480),
        xgm_mean: float = 1500.0,
        xgm_jitter: float = 0.2,
        read_noise: float = 1.5,
        adu_per_photon: float = 1.0,
        xgm_fill: float = 1.0,
    ):
        super().__init__(seed, frames, first_train_id)
        pattern = tuple(str(p) for p in pattern)
        if not pattern or len(set(pattern)) != len(pattern):
            raise ValueError(f"pattern: expected distinct slot names, got {pattern!r}")
        if not delays or trains_per_step < 1:
            raise ValueError("delays: expected at least one value and trains_per_step >= 1")
        nslot = len(pattern)
        srng = self.static_rng(1)
        ss, fs = np.mgrid[0 : MODULE_SHAPE[0], 0 : MODULE_SHAPE[1]].astype(np.float64)
        r = np.hypot(ss - 64.0, fs - 256.0)
        ring = 5.0 + 60.0 * np.exp(-0.5 * ((r - 180.0) / 35.0) ** 2)
        speckle = srng.gamma(4.0, 0.25, MODULE_SHAPE)
        base = (ring * speckle).astype(np.float32)
        dark0 = 40.0 + 3.0 * srng.standard_normal(MODULE_SHAPE)
        dark = np.stack([dark0 + 0.5 * j for j in range(nslot)]).astype(np.float32)
        self._truth = DsscTruth(
            pattern,
            tuple(float(d) for d in delays),
            int(trains_per_step),
            signal or PumpProbeSignal(),
            (slice(roi[0], roi[1]), slice(roi[2], roi[3])),
            base,
            dark,
            float(read_noise),
            float(adu_per_photon),
            float(xgm_mean),
        )
        self.xgm_jitter = float(xgm_jitter)
        self.xgm_fill = float(xgm_fill)
        npix = base.size
        self._dark = dark.reshape(nslot, npix)
        sig = np.empty((len(delays), nslot, npix), np.float32)
        for d, delay in enumerate(self._truth.delays):
            for j in range(nslot):
                sig[d, j] = self._truth.signal_image(delay, j).reshape(-1)
        self._signal = sig
        self._sigma = np.sqrt(read_noise**2 + adu_per_photon * sig).astype(np.float32)
        self._slots = np.arange(self.frames) % nslot
        self._nfel = int(sum(not is_dark(pattern[j]) for j in self._slots))
        self._fel_frames = xgm_frame_indices(self._nfel, pattern)
        self._frame_info = {
            "image.cellId": np.arange(self.frames, dtype=np.uint16),
            "image.pulseId": np.arange(self.frames, dtype=np.uint64),
        }

    @property
    def truth(self) -> DsscTruth:
        """The train-independent ground truth (`DsscTruth`)."""
        return self._truth

    def train_truth(self, train_id: int) -> dict[str, Any]:
        """Per-train truth.

        Returns
        -------
        dict
            ``delay`` [ps], ``step`` (index into ``truth.delays``), ``frame_slot`` (slot index of
            every frame), ``xgm`` (pulse energies of the FEL pulses [uJ], float32),
            ``xgm_frames`` (the frame of each pulse) and ``frame_scale`` (``xgm / xgm_mean`` at
            the FEL frames, 0 at dark frames).
        """
        idx = self.train_index(train_id)
        step = (idx // self._truth.trains_per_step) % len(self._truth.delays)
        k = 1.0 / self.xgm_jitter**2 if self.xgm_jitter > 0 else None
        if k is None:
            rel = np.ones(self._nfel)
        else:
            rel = self.rng(train_id, 1).gamma(k, 1.0 / k, self._nfel)
        xgm = (rel * self._truth.xgm_mean).astype(np.float32)
        scale = np.zeros(self.frames, np.float32)
        scale[self._fel_frames] = xgm / np.float32(self._truth.xgm_mean)
        return {
            "delay": self._truth.delays[step],
            "step": step,
            "frame_slot": self._slots.copy(),
            "xgm": xgm,
            "xgm_frames": self._fel_frames.copy(),
            "frame_scale": scale,
        }

    def _train_data(self, train_id: int) -> tuple[dict, dict]:
        t = self.train_truth(train_id)
        frames = np.empty((self.frames, self._dark.shape[1]), np.uint16)
        step = t["step"]
        noisy_frames(
            frames,
            self._dark,
            self._signal[step],
            self._sigma[step],
            self._slots,
            t["frame_scale"],
            np.uint64(self.noise_seed(train_id)),
            0.0,
            65535.0,
            NORMAL_TABLE,
        )
        intensity = np.full(XGM_LENGTH, self.xgm_fill, np.float32)
        intensity[: self._nfel] = t["xgm"][:XGM_LENGTH]
        data = {
            self.source: {
                self.image_key: frames.reshape(self.frames, *MODULE_SHAPE),
                "image.trainId": np.full(self.frames, train_id, dtype=np.uint64),
                **self._frame_info,
            },
            self.xgm_source: {self.xgm_key: intensity},
            self.xgm_slow_source: {
                "pulseEnergy.numberOfBunchesActual": float(self._nfel),
                "pulseEnergy.photonFlux": float(np.mean(t["xgm"])) if self._nfel else 0.0,
            },
            self.delay_source: {
                self.delay_key: t["delay"],
                "targetPosition": t["delay"],
            },
        }
        return data, {self.source: {self.image_key: ("frame", "ss", "fs")}}
