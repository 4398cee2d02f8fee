"""Small asyncio helpers whose point is never to lose a cancellation.

Python 3.11's ``asyncio.wait_for`` drops a cancellation that lands in the same loop turn as
the awaited operation ends (it returns or raises the operation's outcome instead), and
``with suppress(CancelledError): await task`` also swallows a cancellation of the *caller*.
A stop() built on either can wait for ever on a task that did not notice it was stopped.
Use ``asyncio.timeout`` for deadlines and ``cancel_and_wait`` for stopping a task.
"""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait until it has ended.

    The task's own CancelledError is absorbed; one aimed at the caller while it waits is
    passed on (a stop() that is itself cancelled must end, not carry on as if finished).
    Any other exception the task ended with is raised."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        me = asyncio.current_task()
        if me is not None and me.cancelling():
            raise
