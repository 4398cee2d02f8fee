"""The decoding pool: urgent jobs first, and the CPU its threads used (bench.speech's split)."""

from __future__ import annotations

import threading

from speech.pool import DecodePool


def test_urgent_jobs_run_before_routine_ones_and_cpu_is_counted() -> None:
    pool = DecodePool(1, "test-pool")
    try:
        gate, done = threading.Event(), threading.Event()
        order: list[str] = []
        pool.post(gate.wait)                  # hold the only thread while jobs queue up
        pool.post(lambda: order.append("routine"))
        pool.post(lambda: order.append("urgent"), urgent=True)
        pool.post(done.set)
        before = pool.cpu_s()
        gate.set()
        assert done.wait(10)
        assert order == ["urgent", "routine"]
        spin = pool.submit(lambda: sum(i * i for i in range(2_000_000)))
        assert spin.result(30) > 0
        assert pool.cpu_s() > before          # the spin ran on the pool's thread
    finally:
        pool.shutdown()
