"""Wall-clock time in one place so that tests can see what the services see."""

from __future__ import annotations

import time


def now() -> float:
    return time.time()
