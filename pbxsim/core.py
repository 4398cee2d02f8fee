"""The simulator's shared state, handed to every module that runs calls."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Coroutine, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from .ami_codec import Fields
from .channels import Channel, ChannelRegistry
from .clock import SimClock
from .config import DEFAULT_DIALPLAN, DEFAULT_QUEUES, SimConfig
from .devices import DeviceTracker
from .dialplan import Dialplan
from .events import EventBus, make_event
from .media import SoundLibrary
from .queue_manager import QueueManager
from .queues import queue_configs
from .tasks import TaskOwner

if TYPE_CHECKING:
    from .agents import AgentSpec
    from .citizens import CallHandle, CitizenScript

T = TypeVar("T")
log = logging.getLogger("pbxsim")


class PbxCore:
    def __init__(self, config: SimConfig, clock: SimClock) -> None:
        self.config = config
        self.clock = clock
        self.tasks = TaskOwner("pbxsim")
        self.bus = EventBus()
        self.channels = ChannelRegistry(clock, uniqueid_epoch=config.uniqueid_epoch)
        self.dialplan = Dialplan.parse(config.dialplan if config.dialplan is not None
                                       else DEFAULT_DIALPLAN)
        self.globals: dict[str, str] = dict(self.dialplan.globals)
        # By lower-cased interface: Asterisk matches interfaces case-insensitively.
        self.agents: dict[str, AgentSpec] = {}
        # (context, exten) of a Local channel an Originate will dial -> the citizen who
        # answers it, and where to hand the call's handle.
        self.expected_calls: dict[tuple[str, str],
                                  tuple[CitizenScript, asyncio.Future[CallHandle]]] = {}
        self.devices = DeviceTracker(self)
        self.queues = QueueManager(self, queue_configs(config.queues, DEFAULT_QUEUES))
        self.sounds = SoundLibrary(config)
        self.rng = random.Random(config.seed)
        self.started_at = clock.now()
        self.calls_processed = 0
        self.login_attempts = 0

    # -- events -------------------------------------------------------------------------------
    def emit_fields(self, fields: Fields) -> None:
        self.bus.publish(fields)

    def emit(self, name: str, privilege: str, chan: Channel | None = None,
             extra: Iterable[tuple[str, str]] = (), *, dest: Channel | None = None,
             dest_overrides: dict[str, str] | None = None) -> None:
        self.bus.publish(make_event(name, privilege, chan, extra, dest=dest,
                                    dest_overrides=dest_overrides))

    # -- tasks --------------------------------------------------------------------------------
    def spawn(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        return self.tasks.spawn(coro, name)

    def uptime(self) -> float:
        return self.config.uptime_at_start_s + self.clock.now() - self.started_at

    def active_calls(self) -> int:
        return sum(1 for c in self.channels if c.pbx_running)
