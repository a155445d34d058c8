"""Running a CPU-bound Python function on several cores by forking.

Scoring is Python string work under the GIL, so threads do not help, and a process pool
would pickle the whole test set to its workers. A forked child already has every text in
memory; only its small result comes back through a pipe.
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
    """`[func(x) for x in items]`, the first item here and the rest in forked children.

    An exception in a child is re-raised here. Without fork (Windows) it runs in turn. Call
    it only where no other thread may hold a lock the children would need.
    """
    if len(items) <= 1 or not can_fork():
        return [func(x) for x in items]
    children = []
    for item in items[1:]:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: compute, send, and leave without running any cleanup
            os.close(read_fd)
            try:
                payload = pickle.dumps((True, func(item)), pickle.HIGHEST_PROTOCOL)
            except BaseException as e:  # every failure goes to the parent
                try:
                    payload = pickle.dumps((False, e), pickle.HIGHEST_PROTOCOL)
                except Exception:
                    payload = pickle.dumps((False, RuntimeError(repr(e))))
            with os.fdopen(write_fd, "wb") as pipe:
                pipe.write(payload)
            os._exit(0)
        os.close(write_fd)
        children.append((pid, read_fd))
    try:
        results = [func(items[0])]
    finally:  # collect every child, even when our own share failed
        replies = []
        for pid, read_fd in children:
            with os.fdopen(read_fd, "rb") as pipe:
                replies.append(pipe.read())
            os.waitpid(pid, 0)
    for data in replies:
        if not data:
            raise RuntimeError("a worker process died without a result")
        ok, value = pickle.loads(data)
        if not ok:
            raise value
        results.append(value)
    return results
