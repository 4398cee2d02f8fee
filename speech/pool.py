"""A thread pool for Vosk work with an urgent lane.

Decoding jobs of live calls queue in FIFO order; the last job of a call whose caller just
stopped talking (the one that yields the topic) goes to the urgent lane and runs before the
routine batches of other calls. On a busy node that is the difference between the topic
arriving ~0.1 s or several seconds after the caller stops (measured with 40 calls on 2 cores).

It is also a ``concurrent.futures.Executor`` (``submit``), for ``run_in_executor``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
_Job = tuple[Callable[[], None], Callable[[], object] | None]


class DecodePool(Executor):
    def __init__(self, threads: int, name: str) -> None:
        self._cv = threading.Condition()
        self._urgent: deque[_Job] = deque()
        self._normal: deque[_Job] = deque()
        self._shutdown = False
        # Daemon threads, like a ThreadPoolExecutor's they only run jobs; close() stops them.
        self._threads = [threading.Thread(target=self._work, name=f"{name}_{i}", daemon=True)
                         for i in range(threads)]
        for t in self._threads:
            t.start()

    def post(self, fn: Callable[[], None], *, urgent: bool = False,
             on_cancel: Callable[[], object] | None = None) -> bool:
        """Queue ``fn``; False if the pool is shut down. ``on_cancel`` runs if it never will."""
        with self._cv:
            if self._shutdown:
                return False
            (self._urgent if urgent else self._normal).append((fn, on_cancel))
            self._cv.notify()
        return True

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        fut: Future[T] = Future()

        def run() -> None:
            if not fut.set_running_or_notify_cancel():
                return
            try:
                fut.set_result(fn(*args, **kwargs))
            except BaseException as e:   # noqa: BLE001 - handed to the future's owner
                fut.set_exception(e)

        if not self.post(run, on_cancel=fut.cancel):
            raise RuntimeError("cannot schedule new futures after shutdown")
        return fut

    def cpu_s(self) -> float:
        """CPU seconds used so far by the pool's running threads (for benchmarks)."""
        total = 0.0
        for t in self._threads:
            if t.ident is not None and t.is_alive():
                with contextlib.suppress(OSError):     # the thread ended meanwhile
                    total += time.clock_gettime(time.pthread_getcpuclockid(t.ident))
        return total

    def _work(self) -> None:
        while True:
            with self._cv:
                while not (self._urgent or self._normal or self._shutdown):
                    self._cv.wait()
                if self._urgent:
                    fn, _ = self._urgent.popleft()
                elif self._normal:
                    fn, _ = self._normal.popleft()
                else:
                    return
            try:
                fn()
            except Exception:
                log.exception("speech pool: job failed")

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._cv:
            self._shutdown = True
            dropped = [*self._urgent, *self._normal] if cancel_futures else []
            if cancel_futures:
                self._urgent.clear()
                self._normal.clear()
            self._cv.notify_all()
        for _, on_cancel in dropped:
            if on_cancel is not None:
                on_cancel()
        if wait:
            for t in self._threads:
                if t is not threading.current_thread():
                    t.join()
