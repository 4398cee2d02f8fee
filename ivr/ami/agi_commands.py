"""Async AGI commands in flight: each waits for the AsyncAGIExec that carries its CommandID.

panoramisk 1.4 matched results by channel and lost them (its issue #107); here every command
has its own id, and a channel leaving async AGI (AsyncAGIEnd: hangup or redirect) fails the
commands still waiting on it, since their results can no longer come.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from .agi_result import AgiResult
from .errors import AgiHangup
from .events import AsyncAgiEnd, AsyncAgiExec


@dataclass(slots=True)
class _Command:
    channel: str
    command: str
    future: asyncio.Future[AgiResult]


class AgiCommands:
    """The commands sent and not yet answered, by CommandID."""

    def __init__(self) -> None:
        self._waiting: dict[str, _Command] = {}

    def add(self, command_id: str, channel: str, command: str) -> asyncio.Future[AgiResult]:
        fut: asyncio.Future[AgiResult] = asyncio.get_running_loop().create_future()
        self._waiting[command_id] = _Command(channel, command, fut)
        return fut

    def forget(self, command_id: str) -> None:
        """The sender stopped waiting. A failure that came meanwhile is read here, or asyncio
        would log it as never retrieved (the channel left async AGI while the AGI action
        itself was refused)."""
        c = self._waiting.pop(command_id, None)
        if c is not None and c.future.done() and not c.future.cancelled():
            c.future.exception()

    def channels(self) -> set[str]:
        return {c.channel for c in self._waiting.values()}

    def on_channel(self, channel: str) -> set[str]:
        """CommandIDs still waiting for their result on ``channel``."""
        return {cid for cid, c in self._waiting.items() if c.channel == channel}

    def fail(self, channel: str, exc: Exception, only: set[str] | None = None) -> None:
        """Fail the commands waiting on ``channel`` (all, or those in ``only``)."""
        for cid, c in list(self._waiting.items()):
            if c.channel == channel and (only is None or cid in only) and not c.future.done():
                c.future.set_exception(exc)

    def fail_all(self, exc: Exception) -> None:
        for c in list(self._waiting.values()):
            if not c.future.done():
                c.future.set_exception(exc)

    def on_event(self, event: AsyncAgiExec | AsyncAgiEnd) -> None:
        if isinstance(event, AsyncAgiExec):
            c = self._waiting.get(event.command_id)
            if c is not None and not c.future.done():
                c.future.set_result(event.result)
        else:
            self.fail(event.channel, AgiHangup(f"{event.channel} left async AGI"))
