"""Case status lookup (过程查询): the caller keys a case number and hears its status and
deadline. A wrong (or missing) number is asked again; after ``attempts`` of them the caller
goes to a person, who can look the case up by the caller's details.

Read-back: the intro prompt, the number digit by digit (SAY DIGITS), the status prompt of the
case's status code, and, while the case is still being handled, the deadline prompt and the
deadline's date (YYYYMMDD, centre-local) digit by digit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from zoneinfo import ZoneInfo

from ivr.menus.io import HUMAN_KEY, CallIO, MenuServices
from ivr.menus.model import StatusConfig

log = logging.getLogger("hotline.menu")

# Statuses whose deadline still means something to the caller (cases.lifecycle's
# DEADLINE_STATES; repeated here so the IVR does not depend on the store's internals).
DEADLINE_STATUSES = frozenset({"accepted", "dispatched", "transferred", "processing",
                               "returned"})


async def read_status(io: CallIO, cfg: StatusConfig, sound: Callable[[str], str],
                      services: MenuServices, zone: ZoneInfo, timeout_ms: int,
                      trail: list[str]) -> bool:
    """True when a case was found and read back; False: send the caller to a person.
    Raises when the case store fails (the session's failure policy takes over)."""
    for _ in range(cfg.attempts):
        digits = await io.ask(sound(cfg.ask), timeout_ms, cfg.max_digits)
        if digits is None:
            trail.append("status:no-input")
            continue
        if digits == HUMAN_KEY:
            trail.append("status:key:0")
            return False
        info = await services.case_status(digits) if digits.isdigit() else None
        if info is None:
            trail.append("status:not-found")
            log.info("status lookup: no case %s", digits)
            await io.play([sound(cfg.not_found)])
            continue
        trail.append(f"status:found:{info.status}")
        await io.play([sound(cfg.intro)])
        await io.say_digits(info.number)
        await io.play([sound(cfg.statuses.get(info.status, cfg.unknown_status))])
        if info.deadline is not None and info.status in DEADLINE_STATUSES:
            await io.play([sound(cfg.deadline)])
            await io.say_digits(info.deadline.astimezone(zone).strftime("%Y%m%d"))
        return True
    trail.append("status:gave-up")
    return False
