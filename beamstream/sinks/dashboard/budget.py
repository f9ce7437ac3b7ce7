"""When the next dashboard update may run: plots never throttle processing, yet stay live."""

from __future__ import annotations

import collections
import statistics


class UpdateBudget:
    """Pace display updates by the CPU they cost while processing is saturated.

    At beamline rates processing is mostly idle and every periodic callback updates. While it is
    saturated (the runner's busy fraction above ``busy``, e.g. a replay at full speed), updates
    keep to ``share`` of one core, counting Bokeh's serialization and send as
    ``serialization_factor`` times the callback itself, but come at least every
    ``max_interval`` s so the display never freezes. The cost is the median of the last
    ``window`` steady updates: a one-off update that built new panels does not count.

    Parameters
    ----------
    share
        Share of one core the updates may take while processing is saturated.
    serialization_factor
        Total cost of an update (callback, serialization, send) over the callback's own time.
    max_interval
        Longest time (s) between two updates, whatever they cost.
    busy
        Busy fraction above which processing counts as saturated.
    window
        Number of recent steady update costs whose median sets the pace.
    """

    def __init__(
        self,
        share: float = 0.01,
        serialization_factor: float = 2.0,
        max_interval: float = 2.0,
        busy: float = 0.8,
        window: int = 16,
    ):
        if not 0 < share <= 1:
            raise ValueError(f"share: expected a fraction in (0, 1], got {share!r}")
        if not max_interval > 0:
            raise ValueError(f"max_interval: expected a positive time, got {max_interval!r}")
        self.share = float(share)
        self.serialization_factor = float(serialization_factor)
        self.max_interval = float(max_interval)
        self.busy = float(busy)
        self.costs: collections.deque[float] = collections.deque(maxlen=int(window))
        self.next_allowed = 0.0

    def allows(self, now: float) -> bool:
        """Whether an update starting at ``now`` (s, perf_counter) is within the budget."""
        return now >= self.next_allowed

    def interval(self) -> float:
        """Seconds between updates while saturated, from the recent steady costs."""
        cost = statistics.median(self.costs) if self.costs else 0.0
        return min(self.serialization_factor * cost / self.share, self.max_interval)

    def spent(self, start: float, cost: float, busy: float, one_off: bool = False) -> None:
        """Account an update that started at ``start`` and took ``cost`` s.

        ``busy`` is the runner's busy fraction now; ``one_off`` marks an update that built new
        panels (kept out of the pace, which follows steady updates).
        """
        if not one_off:
            self.costs.append(float(cost))
        saturated = busy > self.busy
        self.next_allowed = start + self.interval() if saturated else 0.0
