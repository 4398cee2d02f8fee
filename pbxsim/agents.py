"""Simulated agent phones: answer after a delay, talk for a while, hang up."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import lifecycle
from .channels import Channel

if TYPE_CHECKING:
    from .core import PbxCore

log = logging.getLogger("pbxsim.agents")


@dataclass
class AgentSpec:
    """The endpoint behind a queue member interface (e.g. ``Local/1001@agents/n``)."""

    interface: str
    name: str = ""
    answer_delay_s: float = 1.0
    talk_time_s: float | Callable[[], float] = 30.0
    answers: bool = True  # False: rings until the queue gives up (ring timeout tests)

    def talk_time(self) -> float:
        value = self.talk_time_s() if callable(self.talk_time_s) else self.talk_time_s
        return max(0.0, float(value))


async def run_agent(core: PbxCore, spec: AgentSpec, chan: Channel) -> None:
    """Drive the agent's own channel (the ``;2`` half of a Local member) until it hangs up."""
    label = spec.name or spec.interface
    try:
        if core.devices.use(spec.interface).in_call:
            # The phone is already in a call (a queue with ringinuse=yes rang it): busy.
            log.info("agent %s is busy on another call", label)
            chan.hangupcause = 17
            return
        if not spec.answers:
            await core.clock.wait_event(chan.interrupted, None)
            return
        if not await lifecycle.sleep(core, chan, spec.answer_delay_s):
            return
        lifecycle.answer(core, chan)
        log.info("agent %s answered on %s", label, chan.name)
        if not await lifecycle.sleep(core, chan, spec.talk_time()):
            return
        log.info("agent %s hangs up %s", label, chan.name)
        if not chan.hangupcause:
            chan.hangupcause = 16
    finally:
        lifecycle.finish_hangup(core, chan, ran_pbx=False)
