"""Rate-limited warnings for malformed input from a peer."""

from __future__ import annotations

import logging
import time


class SkipLog:
    """Malformed input is logged and skipped, but a peer that sends nothing else must not
    flood the log: the first few lines a minute, then how many more were skipped."""

    PER_MINUTE = 5

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._window_start = -60.0
        self._logged = 0
        self._unlogged = 0

    def warn(self, msg: str, *args: object, exc_info: bool = False) -> None:
        now = time.monotonic()
        if now - self._window_start >= 60.0:
            if self._unlogged:
                self._log.warning("AMI: %d more malformed messages skipped since the last "
                                  "report", self._unlogged)
            self._window_start, self._logged, self._unlogged = now, 0, 0
        if self._logged < self.PER_MINUTE:
            self._logged += 1
            self._log.warning(msg, *args, exc_info=exc_info)
        else:
            self._unlogged += 1
