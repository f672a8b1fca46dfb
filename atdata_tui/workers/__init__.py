"""Blocking work for the TUI: plain functions (``workers.index``) and the pool they run on.

Textual starts a new thread for every thread worker. Index providers keep one connection per
thread (SQLite, and typically Redis/PostgreSQL clients), so calling them straight from thousands of
short-lived worker threads (one per page while scrolling a million entries) would open thousands
of connections. ``call`` runs the provider call on a small pool of long-lived threads instead; the
Textual worker just waits for it, stays cancellable, and keeps posting messages as usual.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

#: Few threads: index calls are I/O-bound and mostly tiny; a slow server must not starve the rest.
POOL_SIZE = 4

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(POOL_SIZE, thread_name_prefix="atdata-index")
        return _pool


class Cancelled(Exception):
    """The worker that asked for this call was cancelled before the call started."""


def call(
    fn: Callable[..., T],
    /,
    *args: Any,
    is_cancelled: Callable[[], bool] | None = None,
    **kwargs: Any,
) -> T:
    """Run ``fn(*args, **kwargs)`` on the index pool and wait for it (from a worker thread).

    If ``is_cancelled()`` is already true when the pool gets to the call, it is skipped: stale
    requests (pages scrolled past) then cost nothing.
    """

    def run() -> T:
        if is_cancelled is not None and is_cancelled():
            raise Cancelled()
        return fn(*args, **kwargs)

    future: Future[T] = _executor().submit(run)
    return future.result()


def shutdown() -> None:
    """Let pending calls finish in the background; used when the app exits."""
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool.shutdown(wait=False, cancel_futures=True)
            _pool = None
