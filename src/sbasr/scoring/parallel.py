"""Running a CPU-bound Python function on several cores in forked worker processes.

Scoring is Python string work under the GIL, so threads do not help. The workers are
forked, so they already hold every text in memory and the function itself (with the
whole test set bound into it): only each worker's result travels back, pickled, through
a pipe. Written on os.fork rather than multiprocessing's pool: importing that and
starting its threads and queues is a large share of a short `sbasr score`, for what is
one fork and one pipe per worker.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def can_fork() -> bool:
    return hasattr(os, "fork")


def fork_map(func: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """`[func(x) for x in items]`, the first item here and the rest in forked workers.

    An exception in a worker is re-raised here. Without fork (Windows) it runs in turn.
    Call it only where no other thread may hold a lock the workers would need.
    """
    if len(items) <= 1 or not can_fork():
        return [func(x) for x in items]
    workers = [_start(func, x) for x in items[1:]]
    try:
        first = func(items[0])  # our own share meanwhile
    except BaseException:
        for pid, pipe in workers:  # no worker outlives a failure
            os.kill(pid, 9)
            _reap(pid, pipe)
        raise
    results: list[R] = [first]
    failure: BaseException | None = None
    for pid, pipe in workers:
        try:
            results.append(_result(pid, pipe))
        except BaseException as e:  # the other workers are still reaped
            failure = failure or e
    if failure is not None:
        raise failure
    return results


def _start(func: Callable[[T], R], item: T) -> tuple[int, int]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: run, send (ok, result or exception), and leave at once
        os.close(read)
        code = 0
        try:
            try:
                payload = pickle.dumps((True, func(item)), pickle.HIGHEST_PROTOCOL)
            except BaseException as e:
                try:
                    payload = pickle.dumps((False, e), pickle.HIGHEST_PROTOCOL)
                except Exception:  # an exception that cannot be pickled: its text
                    payload = pickle.dumps((False, RuntimeError(repr(e))))
            with os.fdopen(write, "wb") as out:
                out.write(payload)
        except BaseException:
            code = 1
        # No interpreter teardown: it would flush the parent's buffered output a second
        # time and free every inherited object for nothing.
        os._exit(code)
    os.close(write)
    return pid, read


def _result(pid: int, pipe: int) -> object:
    with os.fdopen(pipe, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        raise RuntimeError(f"a scoring worker ended without a result (status {status})")
    ok, value = pickle.loads(data)
    if not ok:
        raise value
    return value


def _reap(pid: int, pipe: int) -> None:
    os.close(pipe)
    os.waitpid(pid, 0)
