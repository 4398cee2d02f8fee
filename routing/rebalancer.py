"""Applies the policy's member penalties over AMI (QueuePenalty), periodically.

This is how the live service "moves" capacity when waits change: a multi-skilled agent's
membership in a queue where it is less proficient is parked (out of every caller's penalty
window) while its own callers need it, and opened again when another queue's callers would
wait longer than the cost of serving them less proficiently (see ``RoutingPolicy``).
"""

from __future__ import annotations

import asyncio
import logging

from ivr.aio import cancel_and_wait
from ivr.ami.errors import AmiError
from ivr.ami.link import AmiLink

from .live_state import LiveQueues
from .policy import RoutingPolicy

log = logging.getLogger("hotline.routing")


class PenaltyRebalancer:
    def __init__(self, link: AmiLink, live: LiveQueues, policy: RoutingPolicy,
                 interval_s: float) -> None:
        self._link = link
        self._live = live
        self._policy = policy
        self._interval = interval_s
        self._task: asyncio.Task[None] | None = None
        self.applied = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="penalty-rebalancer")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)

    async def rebalance(self) -> int:
        """One pass; returns how many penalties changed."""
        changes = self._policy.member_penalties(self._live.snapshot())
        done = 0
        for ch in changes:
            member = self._live.members.get(ch.queue, {}).get(ch.agent)
            if member is None:
                continue
            try:
                await self._link.action("QueuePenalty", {
                    "Queue": ch.queue, "Interface": member.interface,
                    "Penalty": str(ch.penalty)})
            except AmiError as e:
                log.warning("penalty of %s in %s not changed: %s", ch.agent, ch.queue, e)
                continue
            member.penalty = ch.penalty     # the QueueMemberPenalty event confirms it
            log.info("%s in %s: penalty %d (%s)", ch.agent, ch.queue, ch.penalty, ch.reason)
            done += 1
        self.applied += done
        return done

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            if self._link.is_up:
                try:
                    await self.rebalance()
                except Exception:
                    log.exception("penalty rebalancing failed; routing goes on unchanged")
