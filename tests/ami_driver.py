"""Drives an ``AmiLink`` through a transcript's recorded actions, in the recorded order."""

from __future__ import annotations

import asyncio
from typing import Any

from ivr.ami.link import AmiLink


async def replay_actions(link: AmiLink, actions: list[tuple[str, dict[str, str]]],
                         timeout: float = 20.0) -> list[Any]:
    """Send every action as the recording client did (AGI commands through ``link.agi``);
    return each one's outcome (an ``ActionResult``, an ``AgiResult`` or the exception)."""
    tasks: list[asyncio.Task[Any]] = []
    for name, fields in actions:
        if name.lower() == "agi":
            f = {k.lower(): v for k, v in fields.items()}
            coro = link.agi(f["channel"], f["command"], timeout=timeout)
        else:
            coro = link.action(name, fields, check=False, timeout=timeout)
        tasks.append(asyncio.create_task(coro))
        await asyncio.sleep(0)   # let it write before the next one: keeps the wire order
    return list(await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True),
                                       timeout))
