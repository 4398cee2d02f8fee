"""Virtual time for the simulator.

Every timer in pbxsim goes through one :class:`SimClock` so that a whole call centre can be run
faster than real time (``speed`` > 1) while every duration that Asterisk reports (Uniqueid epochs,
``${EPOCH}``, HoldTime, TalkTime, Wait) stays expressed in simulated seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class SimClock:
    """Simulated wall clock running ``speed`` times faster than the real one."""

    def __init__(self, speed: float = 1.0, start_epoch: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self._speed = float(speed)
        self._t0 = time.monotonic()
        self._epoch0 = time.time() if start_epoch is None else float(start_epoch)

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> float:
        """Simulated epoch seconds (what Asterisk's ``time()`` would return)."""
        return self._epoch0 + (time.monotonic() - self._t0) * self._speed

    def elapsed(self) -> float:
        """Simulated seconds since the clock was created."""
        return (time.monotonic() - self._t0) * self._speed

    def to_real(self, sim_seconds: float) -> float:
        return max(0.0, sim_seconds) / self._speed

    async def sleep(self, sim_seconds: float) -> None:
        await asyncio.sleep(self.to_real(sim_seconds))

    async def sleep_until(self, epoch: float) -> None:
        await self.sleep(epoch - self.now())

    async def wait_event(self, event: asyncio.Event, timeout_s: float | None) -> bool:
        """Wait for ``event`` at most ``timeout_s`` simulated seconds; True if it was set."""
        if event.is_set():
            return True
        if timeout_s is None:
            await event.wait()
            return True
        if timeout_s <= 0:
            return False
        try:
            async with asyncio.timeout(self.to_real(timeout_s)):
                await event.wait()
        except TimeoutError:
            return event.is_set()
        return True

    async def timeout(self, awaitable: Awaitable[T], timeout_s: float) -> T:
        """``asyncio.wait_for`` in simulated seconds (raises TimeoutError).

        Built on ``asyncio.timeout``: 3.11's wait_for loses a cancellation that lands as the
        awaitable ends, and a simulator task that misses its cancellation keeps stop()
        waiting."""
        async with asyncio.timeout(self.to_real(timeout_s)):
            return await awaitable
