"""Interpreter settings for long-running, allocation-heavy event processing.

Every event allocates a few small objects, and open sessions hold many more.
CPython's default cyclic garbage collector then runs a young-generation pass
every 700 allocations and, regularly, a full pass over every open session,
which costs a quarter of replay time. Nothing in the engine relies on the cycle
collector promptly (its state has no reference cycles to speak of), so the
commands that process events collect far less often.
"""

from __future__ import annotations

import gc
import logging
from typing import Final

logger = logging.getLogger(__name__)

# Young generation: collect after this many net allocations instead of 700.
GEN0_THRESHOLD: Final = 100_000
GEN1_THRESHOLD: Final = 50
GEN2_THRESHOLD: Final = 100


def tune_for_throughput() -> None:
    """Freeze what start-up allocated and space out cycle collection."""
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, GEN1_THRESHOLD, GEN2_THRESHOLD)
    logger.debug("garbage collection thresholds set to %s", gc.get_threshold())
