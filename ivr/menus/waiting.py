"""Waiting for a person: what the caller hears before joining a busy queue, and how a caller
who pressed the callback key inside app_queue is recognised afterwards.

Two halves, because app_queue owns the caller while it waits:

* before ``Queue()``, when the router expects a long wait (``min_wait_s``), the service tells
  the caller their position and expected wait and offers a callback (a key within
  ``offer_timeout_ms``); this runs over AGI like any prompt.
* while queued, app_queue itself repeats position and hold time (``announce-position``,
  ``announce-holdtime``, ``announce-frequency``) and plays the callback offer
  (``periodic-announce``); its ``context`` option lets a single key leave the queue: app_queue
  jumps to that key's extension in the exit context and ``Queue()`` returns to the service,
  which reads ``${CONTEXT}``/``${EXTEN}`` to see which key it was. ASTERISK.md has the
  queues.conf and extensions.conf lines.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ivr.menus.io import CallIO
from ivr.menus.model import WaitingConfig

# The context app_queue jumps to when a caller presses a key listed there (queues.conf
# ``context=``). Its extensions are never run while the service drives the call.
EXIT_CONTEXT = "hotline-queue-exit"


def should_announce(cfg: WaitingConfig, position: int, expected_wait_s: float | None) -> bool:
    """Only a wait the router can estimate is announced before the queue: telling a caller
    "you are first" when an agent is free only delays them."""
    return (expected_wait_s is not None and expected_wait_s >= cfg.min_wait_s
            and position >= cfg.from_position)


async def offer_callback(io: CallIO, cfg: WaitingConfig, sound: Callable[[str], str],
                         position: int, expected_wait_s: float | None,
                         trail: list[str]) -> bool:
    """Position, expected wait (when known), then the offer; True if the caller took it."""
    trail.append(f"wait:position:{position}")
    await io.play([sound(cfg.position)])
    await io.say_digits(str(position))
    if cfg.wait is not None and expected_wait_s is not None and expected_wait_s > 0:
        await io.play([sound(cfg.wait)])
        await io.say_digits(str(max(1, math.ceil(expected_wait_s / 60))))
        if cfg.minutes is not None:
            await io.play([sound(cfg.minutes)])
    key = await io.ask(sound(cfg.offer), cfg.offer_timeout_ms, 1)
    if key == cfg.callback_key:
        trail.append("wait:callback")
        return True
    return False


def exit_key(location: str, callback_key: str) -> bool:
    """``location`` is ``${CONTEXT},${EXTEN}`` read after ``Queue()`` returned: True when the
    caller left the queue with the callback key."""
    context, _, exten = location.partition(",")
    return context == EXIT_CONTEXT and exten == callback_key
