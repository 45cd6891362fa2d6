"""The number of threads decoding and scoring run on, the same for torch and numba.

torch and numba's parallel loops share one OpenMP runtime (libgomp). When numba starts its thread pool (its first
parallel loop, or the first numba.get_num_threads()), it sets the runtime's thread count to its own (all cores),
undoing an earlier torch.set_num_threads(): a decoder asked to run on one thread then ran on two after its first
prefill scan. use_threads() starts numba's pool first, then sets both counts, so no later scan changes them.
"""

from __future__ import annotations

import os

import torch


def available_threads() -> int:
    """The cores this process may run on (its CPU affinity), or os.cpu_count() where that is unknown."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def use_threads(threads: int | None = None) -> int:
    """Runs torch and numba on `threads` threads (None: available_threads(), capped by numba's pool size);
    returns the count set. ValueError for a count below 1."""
    import numba

    if threads is None:
        threads = available_threads()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads={threads!r}: expected an integer >= 1")
    start_numba_pool()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    torch.set_num_threads(threads)
    return threads


def start_numba_pool() -> None:
    """Starts numba's thread pool now, keeping torch's thread count as it was and giving numba the same count:
    called when the numba kernels are imported, so that a torch.set_num_threads() made before still holds after
    the first parallel scan."""
    import numba

    before = torch.get_num_threads()
    numba.get_num_threads()  # starts the pool, which resets the shared OpenMP count
    numba.set_num_threads(min(before, numba.config.NUMBA_NUM_THREADS))
    torch.set_num_threads(before)
