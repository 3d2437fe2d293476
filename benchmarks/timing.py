"""The one timing loop of the benchmark scripts (imported by its siblings: a script's own folder
leads ``sys.path`` when it runs).

``call_times`` times up to ``repeat`` calls of a function after one untimed warm-up call (the
allocator, oneDNN's primitive cache, cuDNN's autotuning), on the clock the caller picks: wall
time (``time.perf_counter``, the default) or CPU time (``time.process_time``, which holds on a
shared machine for single-threaded work). ``best_time`` and ``median_time`` reduce those times
the two ways the scripts report them.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def call_times(fn: Callable[[], object], repeat: int, *,
               clock: Callable[[], float] = time.perf_counter, warmup: bool = True,
               cap: float | None = None) -> tuple[list[float], object]:
    """The times of up to ``repeat`` (at least one) timed calls of fn(), and the last result.
    ``warmup``: one untimed call first. ``cap`` (seconds): stop as soon as the best time so far
    is above it, so that slow work is not repeated."""
    out = fn() if warmup else None
    times: list[float] = []
    for _ in range(max(1, repeat)):
        start = clock()
        out = fn()
        times.append(clock() - start)
        if cap is not None and min(times) > cap:
            break
    return times, out


def best_time(repeat: int, fn: Callable, *args, clock: Callable[[], float] = time.perf_counter,
              warmup: bool = True, cap: float | None = None, **kwargs) -> tuple[float, object]:
    """Best time of ``repeat`` calls of fn(*args, **kwargs) (``call_times``), and the last
    result."""
    times, out = call_times(lambda: fn(*args, **kwargs), repeat, clock=clock, warmup=warmup,
                            cap=cap)
    return min(times), out


def median_time(repeat: int, fn: Callable, *args, clock: Callable[[], float] = time.perf_counter,
                warmup: bool = True, **kwargs) -> tuple[float, object]:
    """Median time of ``repeat`` calls of fn(*args, **kwargs) (``call_times``), and the last
    result: for figures that should not flatter one lucky call."""
    times, out = call_times(lambda: fn(*args, **kwargs), repeat, clock=clock, warmup=warmup)
    return statistics.median(times), out
