"""`WriteGuard`: write errors of a file sink counted, logged rate-limited, and retried.

A full disk (or a broken network file system) must not end a run, flood the log or pass
unnoticed: each failed write is counted by its reason (``ENOSPC``, ``EFBIG``, ...), logged once
per reason and interval with one line, and the previous complete file is kept; the next snapshot
tries again, so writing resumes by itself when space returns. Whether the final snapshot was
written is recorded, so the run can say so and exit non-zero.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import glob
import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from beamstream.streamer.ratelog import RateLimitedLog

__all__ = ["WriteGuard", "error_reason", "remove_stale_temporaries"]

log = logging.getLogger(__name__)


def error_reason(e: BaseException) -> str:
    """A short counter name for a write error: the errno name, else the exception type."""
    code = getattr(e, "errno", None)
    if not isinstance(code, int):  # HDF5 names the errno in its message only
        found = re.search(r"errno = (\d+)", str(e))
        code = int(found.group(1)) if found else None
    if isinstance(code, int) and code in errno.errorcode:
        return errno.errorcode[code]
    return type(e).__name__


class WriteGuard:
    """Run writes of one file, counting and rate-limit-logging their failures.

    Parameters
    ----------
    what
        The file's name in messages.
    final_retry_s
        How long the final write is retried (space may come back) before giving up.
    """

    def __init__(self, what: str, final_retry_s: float = 10.0, log_interval: float = 10.0):
        self.what = what
        self.final_retry_s = final_retry_s
        self.errors: collections.Counter[str] = collections.Counter()
        self.failing_since: float | None = None
        self.last_ok: float | None = None
        self.final_written: bool | None = None  # None: no final write attempted yet
        self._log = RateLimitedLog(log, interval=log_interval)

    def attempt(self, write: Callable[[], Any], final: bool = False) -> bool:
        """Call ``write``; True when it succeeded. Errors are counted and logged, not raised.

        The final write is retried (every 0.5 s, for ``final_retry_s``) before giving up.
        """
        deadline = time.monotonic() + (self.final_retry_s if final else 0.0)
        while True:
            try:
                write()
            except Exception as e:  # a full disk, a vanished directory, a broken file system
                reason = error_reason(e)
                self.errors[reason] += 1
                if self.failing_since is None:
                    self.failing_since = time.monotonic()
                self._log.error(
                    reason,
                    "%s: write failed (%s), previous file kept, will retry: %s",
                    self.what,
                    reason,
                    str(e).splitlines()[0][:200] if str(e) else type(e).__name__,
                )
                if time.monotonic() >= deadline:
                    if final:
                        self.final_written = False
                    return False
                time.sleep(0.5)
                continue
            if self.failing_since is not None:
                log.warning(
                    "%s: writing again after %.1f s of failures (%d failed writes)",
                    self.what,
                    time.monotonic() - self.failing_since,
                    sum(self.errors.values()),
                )
                self.failing_since = None
            self.last_ok = time.monotonic()
            if final:
                self.final_written = True
            return True

    @property
    def failed(self) -> int:
        return sum(self.errors.values())


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove ``<path>.tmp-<pid>`` files left by killed writers (whose process is gone)."""
    removed = []
    for tmp in path.parent.glob(f"{glob.escape(path.name)}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or (int(pid) != os.getpid() and _alive(int(pid))):
            continue
        with contextlib.suppress(OSError):
            tmp.unlink()
            removed.append(tmp)
            log.info("removed %s, left by a killed writer", tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
