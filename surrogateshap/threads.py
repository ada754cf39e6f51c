"""The cores this process may use, and sharing them among a few threads without oversubscribing them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

from threadpoolctl import threadpool_limits

__all__ = ["shared_cores", "usable_cores"]


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS has one, else all of them).

    >>> usable_cores() >= 1
    True
    """
    if hasattr(os, "sched_getaffinity"):  # Linux; not on macOS or Windows
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@contextmanager
def shared_cores(jobs: int) -> Iterator[Any]:
    """Something with a lazy, ordered ``map``: the builtin one for ``jobs == 1``, else a pool of ``jobs`` threads.

    While the threads run, BLAS and torch get ``usable_cores() // jobs`` threads each, so the jobs share the
    cores instead of oversubscribing them (XGBoost, BLAS and torch release the GIL); the limits found are
    restored afterwards. On an error or Ctrl-C the jobs not yet started are cancelled; the running ones end first.

    >>> with shared_cores(2) as pool:
    ...     list(pool.map(pow, [2, 3], [2, 2]))
    [4, 9]
    """
    if jobs == 1:
        yield SimpleNamespace(map=map)
        return
    import torch

    threads = max(1, usable_cores() // jobs)
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    pool = ThreadPoolExecutor(jobs, thread_name_prefix="shared")
    try:
        with threadpool_limits(limits=threads):
            yield pool
    except BaseException:
        # e.g. Ctrl-C: what has not started never starts; the running jobs (threads cannot be stopped) finish
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)
        torch.set_num_threads(torch_threads)
