"""Log lines that no flood of messages can multiply: once per kind of problem and period."""

from __future__ import annotations

import logging
import time
from typing import Any

LOG_EVERY_S = 600.0  # one line per kind of problem per this many seconds
LINES_PER_PERIOD = 100  # and no more than this many lines in all within a period
MAX_KINDS = 1_000  # kinds remembered; keys never carry what a sender chose (topics, names)


class ThrottledLog:
    """Log a recurring problem once per key and period; count what was left out.

    Keys name a kind of problem (the decoder's reason, a configured asset), never a topic or a
    device name from the wire: wildcard topics are under anyone's control, so a key per topic
    would log one line per message. The budget per period bounds the lines even if a caller
    gets that wrong; diagnostics keep the counts.
    """

    def __init__(
        self,
        logger: logging.Logger,
        period_s: float = LOG_EVERY_S,
        lines_per_period: int = LINES_PER_PERIOD,
    ) -> None:
        """Remember when each key was last logged and how many lines this period took."""
        self._logger = logger
        self._period = period_s
        self._budget = lines_per_period
        self._last: dict[str, float] = {}
        self._period_start = float("-inf")
        self._lines = 0
        self.suppressed = 0

    def _due(self, key: str) -> bool:
        now = time.monotonic()
        if now - self._period_start >= self._period:
            self._period_start = now
            self._lines = 0
        last = self._last.get(key)
        if (last is not None and now - last < self._period) or self._lines >= self._budget:
            self.suppressed += 1
            return False
        if len(self._last) >= MAX_KINDS:
            self._last = {k: t for k, t in self._last.items() if now - t < self._period}
        self._last[key] = now
        self._lines += 1
        return True

    def warning(self, key: str, message: str, *args: Any) -> None:
        """Log a warning unless the same key was logged within the period."""
        if self._due(key):
            self._logger.warning(message, *args)

    def info(self, key: str, message: str, *args: Any) -> None:
        """Log an info line unless the same key was logged within the period."""
        if self._due(key):
            self._logger.info(message, *args)

    def exception(self, key: str, message: str, *args: Any) -> None:
        """Log an error with traceback unless the same key was logged within the period."""
        if self._due(key):
            self._logger.exception(message, *args)
