"""`GapCounter`: trains lost before they reached the receiver, from gaps in the train ids.

A SUB socket (and ZeroMQ's high-water marks in general) drops messages without telling the
receiver; the only trace is a gap in the train ids that arrive. The counter learns the source's
stride as the greatest common divisor of the steps seen when that divisor was itself seen as a
step (1 otherwise: under heavy loss the steps can share a divisor by chance); it is 1 for a live
detector, N for a replay with stride N. It counts the trains missing between the first and the
last id: ``span / stride - steps``, exact whatever the order in which gaps and steps arrive. A
step back or a jump of more than ``max_gap`` trains is a restart of the source (a new sequence,
counted as such), not a loss; so is a reconnection (`restart`).
"""

from __future__ import annotations

import math

__all__ = ["GapCounter"]


class GapCounter:
    """Count trains missing between consecutive train ids.

    Parameters
    ----------
    max_gap
        A jump of more than this many train ids starts a new sequence (a restarted source).
    """

    def __init__(self, max_gap: int = 1_000_000):
        self.max_gap = max_gap
        self.restarts = 0
        self._closed_lost = 0
        self._last: int | None = None
        self._span = 0
        self._steps = 0
        self._stride = 0
        self._min_step = 0

    @property
    def stride(self) -> int | None:
        """The source's train-id step (None before two ids were seen)."""
        if not self._stride:
            return None
        return self._stride if self._stride == self._min_step else 1

    @property
    def lost(self) -> int:
        """Trains missing so far (in every sequence)."""
        return self._closed_lost + self._open_lost()

    def _open_lost(self) -> int:
        stride = self.stride
        return self._span // stride - self._steps if stride else 0

    def restart(self) -> None:
        """Start a new sequence (the source restarted or came back after an absence)."""
        self._closed_lost += self._open_lost()
        self._last = None
        self._span = self._steps = self._stride = self._min_step = 0

    def see(self, train_id: int) -> None:
        """Note one arriving train id."""
        last, self._last = self._last, train_id
        if last is None or train_id == last:
            return
        step = train_id - last
        if step < 0 or step > self.max_gap:
            self.restarts += 1
            self.restart()
            self._last = train_id
            return
        self._span += step
        self._steps += 1
        self._stride = math.gcd(self._stride, step)
        self._min_step = min(self._min_step or step, step)
