"""The Asterisk-side watchdog of a call in the IVR, kept pushed back by the service.

The generated dialplan arms ``TIMEOUT(absolute)`` (``ivr.watchdog_s``) just before async AGI;
its ``T`` extension queues the caller to the default group. While a session drives the call,
this pushes the timeout back over AMI, so it only runs out when the service is gone (crashed
for good, or its AMI link down that long). Whoever hands the call on (Queue, a transfer)
stops it and clears the channel's timer, or the timer would end that conversation.
"""

from __future__ import annotations

import asyncio
import logging

from ivr.ami.link import AmiLink

log = logging.getLogger("hotline.call")

# How often at most it is pushed back: often enough that a late push or two cannot let it run
# out (and simulated clocks, up to 20 times faster, still see it in time); one small AMI
# action per call in the IVR every few seconds is nothing to Asterisk.
PUSH_S = 5.0
VARIABLE = "TIMEOUT(absolute)"


class IvrWatchdog:
    def __init__(self, link: AmiLink, channel: str, call_id: str, seconds: int) -> None:
        self._link = link
        self._channel = channel
        self._call_id = call_id
        self._seconds = seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._seconds > 0 and self._task is None:
            self._task = asyncio.create_task(self._push(), name=f"watchdog-{self._call_id}")

    def stop(self) -> bool:
        """Stop pushing it back. True if it was running: the channel's timer then still runs
        and must be cleared (``VARIABLE`` = 0) by whoever hands the call on."""
        if self._task is None:
            return False
        self._task.cancel()
        self._task = None
        return True

    async def _push(self) -> None:
        while True:
            await asyncio.sleep(min(self._seconds / 4, PUSH_S))
            try:
                await self._link.action("Setvar", {"Channel": self._channel,
                                                   "Variable": VARIABLE,
                                                   "Value": str(self._seconds)})
            except Exception as e:  # noqa: BLE001 - link down: Asterisk's timer runs on
                log.debug("call %s: watchdog not pushed back: %s", self._call_id, e)
