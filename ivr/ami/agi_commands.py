"""Async AGI commands in flight: each waits for the AsyncAGIExec that carries its CommandID.

panoramisk 1.4 matched results by channel and lost them (its issue #107); here every command
has its own id, and a channel leaving async AGI (AsyncAGIEnd: hangup or redirect) fails the
commands still waiting on it, since their results can no longer come.

A channel that has left async AGI is remembered until it enters it again or hangs up:
res_agi keeps the channel's command queue after AsyncAGIEnd, so Asterisk accepts a command
sent then and never runs it, and its sender would wait for ever.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from .agi_result import AgiResult
from .errors import AgiHangup, AgiLeft
from .events import AsyncAgiEnd, AsyncAgiExec, AsyncAgiStart, Hangup


@dataclass(slots=True)
class _Command:
    channel: str
    command: str
    future: asyncio.Future[AgiResult]


class AgiCommands:
    """The commands sent and not yet answered, by CommandID."""

    def __init__(self) -> None:
        self._waiting: dict[str, _Command] = {}
        # Channels out of async AGI, not hung up yet: True if learnt after a reconnect.
        self._left: dict[str, bool] = {}

    def left(self, channel: str) -> AgiLeft | None:
        """Why a command sent on ``channel`` now would never run, if it would not."""
        if channel not in self._left:
            return None
        return AgiLeft(f"{channel} has left async AGI", unseen=self._left[channel])

    def on_left(self, channel: str, *, unseen: bool = False) -> None:
        self._left[channel] = unseen
        self.fail(channel, AgiLeft(f"{channel} left async AGI", unseen=unseen))

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

    def on_event(self, event: AsyncAgiStart | AsyncAgiExec | AsyncAgiEnd | Hangup) -> None:
        if isinstance(event, AsyncAgiExec):
            c = self._waiting.get(event.command_id)
            # The channel too: an id alone could be another service's on the same Asterisk.
            if c is not None and c.channel == event.channel and not c.future.done():
                c.future.set_result(event.result)
        elif isinstance(event, AsyncAgiEnd):
            self.on_left(event.channel)
        elif isinstance(event, AsyncAgiStart):
            self._left.pop(event.channel, None)
        else:
            # Hangup: the channel name is done with, and no command on it can run now.
            self._left.pop(event.channel, None)
            self.fail(event.channel, AgiHangup(f"{event.channel} hung up"))
