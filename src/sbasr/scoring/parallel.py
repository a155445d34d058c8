"""Running a CPU-bound Python function on several cores in forked worker processes.

Scoring is Python string work under the GIL, so threads do not help. The workers are
forked, so they already hold every text in memory: the function (with the whole test set
bound into it) reaches them as the pool's initializer argument, which a fork hands over
without pickling, and only the small items and results travel through the pool's pipes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_func: Callable[[Any], Any] | None = None  # set in each worker by `_inherit`


def can_fork() -> bool:
    return hasattr(os, "fork")


def fork_map(func: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """`[func(x) for x in items]`, the first item here and the rest in forked workers.

    An exception in a worker is re-raised here. Without fork (Windows) it runs in turn.
    Call it only where no other thread may hold a lock the workers would need.
    """
    if len(items) <= 1 or not can_fork():
        return [func(x) for x in items]
    # Imported here: most sets are small enough for one process, and these cost a
    # noticeable share of a short `sbasr score`.
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("fork")
    pool = ProcessPoolExecutor(
        len(items) - 1, mp_context=context, initializer=_inherit, initargs=(func,)
    )
    try:
        futures = [pool.submit(_call, x) for x in items[1:]]
        first = func(items[0])  # our own share meanwhile
        results = [first, *(f.result() for f in futures)]
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)  # no worker outlives a failure
        raise
    # Every result is in: the workers exit on their own (the pool's thread reaps them)
    # rather than keeping the caller waiting while their memory is torn down.
    pool.shutdown(wait=False)
    return results


def _inherit(func: Callable[[Any], Any]) -> None:
    global _func
    _func = func


def _call(item: Any) -> Any:
    assert _func is not None, "run only in a fork_map worker"
    return _func(item)
