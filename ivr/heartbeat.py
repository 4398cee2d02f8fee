"""Keeps GLOBAL(HOTLINE_HEARTBEAT) fresh so the dialplan's guard knows we are alive.

The value is Asterisk's own clock (the Timestamp of a Ping reply), not ours: the guard
compares it with ${EPOCH} on the Asterisk host, so clock skew between hosts cannot make a
healthy service look dead, or a dead one alive.
"""

from __future__ import annotations

import asyncio
import logging

from ivr.aio import cancel_and_wait
from ivr.ami.errors import AmiError
from ivr.ami.link import AmiLink

log = logging.getLogger("hotline.heartbeat")

VARIABLE = "GLOBAL(HOTLINE_HEARTBEAT)"


class Heartbeat:
    def __init__(self, link: AmiLink, interval_s: float) -> None:
        self._link = link
        self._interval = interval_s
        self._task: asyncio.Task[None] | None = None
        self.beats = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)   # not suppress(): see ivr.aio

    async def beat(self) -> None:
        pong = await self._link.action("Ping")
        stamp = pong.fields.get("timestamp", "")
        seconds = stamp.split(".", 1)[0]
        if not seconds.isdigit():
            raise AmiError(f"Ping reply without a usable Timestamp: {stamp!r}")
        await self._link.action("Setvar", {"Variable": VARIABLE, "Value": seconds})
        self.beats += 1

    async def _run(self) -> None:
        while True:
            if self._link.is_up:
                try:
                    await self.beat()
                except AmiError as e:
                    log.warning("heartbeat not refreshed: %s", e)
            await asyncio.sleep(self._interval)
