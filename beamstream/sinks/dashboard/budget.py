"""When the next dashboard update may run: plots never throttle processing, yet stay live."""

from __future__ import annotations

import collections
import statistics


class UpdateBudget:
    """Pace display updates by what they cost while processing is saturated.

    At beamline rates processing is mostly idle and every periodic callback updates. While it is
    saturated (the runner's busy fraction above ``busy``, e.g. a replay at full speed), the
    updates keep to ``share`` of one core, but come at least every ``max_interval`` s so the
    display never freezes. An update costs its callback in the server plus the time until the
    page acknowledges it (serialization, sending, the browser applying and drawing it): a slow
    browser, e.g. one sharing the processing machine, gets fewer updates. Until a page has
    answered, the rest is taken as ``serialization_factor - 1`` times the callback. Costs are
    means over the last ``window`` updates; a one-off update that built new panels does not
    count.

    Parameters
    ----------
    share
        Share of one core the display (server and page) may take while processing is saturated.
    serialization_factor
        Total cost of an update over its callback's own time, before the page has answered.
    max_interval
        Longest time (s) between two updates, whatever they cost.
    busy
        Busy fraction above which processing counts as saturated.
    window
        Number of recent updates whose mean costs set the pace.
    """

    def __init__(
        self,
        share: float = 0.05,
        serialization_factor: float = 2.0,
        max_interval: float = 5.0,
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
        self.page_costs: collections.deque[float] = collections.deque(maxlen=int(window))
        self.next_allowed = 0.0

    def allows(self, now: float) -> bool:
        """Whether an update starting at ``now`` (s, perf_counter) is within the budget."""
        return now >= self.next_allowed

    def cost(self) -> float:
        """Mean cost (s) of one update: its callback plus the page's answer (or an estimate)."""
        server = statistics.fmean(self.costs) if self.costs else 0.0
        if self.page_costs:
            return server + statistics.fmean(self.page_costs)
        return self.serialization_factor * server

    def interval(self) -> float:
        """Seconds between updates while saturated."""
        return min(self.cost() / self.share, self.max_interval)

    def spent(self, start: float, cost: float, busy: float, one_off: bool = False) -> None:
        """Account an update whose callback started at ``start`` and took ``cost`` s.

        ``busy`` is the runner's busy fraction now; ``one_off`` marks an update that built new
        panels (kept out of the pace, which follows steady updates).
        """
        if not one_off:
            self.costs.append(float(cost))
        saturated = busy > self.busy
        self.next_allowed = start + self.interval() if saturated else 0.0

    def answered(self, seconds: float) -> None:
        """Account the time from the end of an update's callback to the page's acknowledgement."""
        self.page_costs.append(max(float(seconds), 0.0))
