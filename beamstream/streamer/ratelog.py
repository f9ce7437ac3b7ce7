"""Rate-limited logging: the first occurrence of each kind of problem, then periodic counts."""

from __future__ import annotations

import logging
import threading
import time

__all__ = ["RateLimitedLog"]


class RateLimitedLog:
    """Log a message per ``kind`` at most once every ``interval`` seconds, counting the rest.

    A bad message every millisecond must not flood the log: the first one of a kind is logged
    at once, later ones are counted and reported with the next message of that kind that is
    allowed through ("... (37 more since last report)").
    """

    def __init__(self, logger: logging.Logger, interval: float = 5.0):
        self.logger = logger
        self.interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def log(self, level: int, kind: str, msg: str, *args: object) -> bool:
        """Log unless ``kind`` was logged in the last ``interval`` s; True when it was logged."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self.interval:
                self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
                return False
            self._last[kind] = now
            more = self._suppressed.pop(kind, 0)
        if more:
            msg += f" ({more} more since last report)"
        self.logger.log(level, msg, *args)
        return True

    def note(self, kind: str) -> None:
        """Count ``kind`` as logged now (by other means, e.g. with its traceback)."""
        with self._lock:
            self._last[kind] = time.monotonic()

    def warning(self, kind: str, msg: str, *args: object) -> bool:
        return self.log(logging.WARNING, kind, msg, *args)

    def error(self, kind: str, msg: str, *args: object) -> bool:
        return self.log(logging.ERROR, kind, msg, *args)
