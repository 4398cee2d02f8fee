"""PbxSim: the public face of the simulator."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Self

from .agents import AgentSpec
from .ami_server import AmiServer
from .citizens import CallHandle, CitizenScript, place_call
from .clock import SimClock
from .config import SimConfig
from .core import PbxCore
from .queue_manager import Res

log = logging.getLogger("pbxsim")


@dataclass(frozen=True)
class MemberSnapshot:
    interface: str
    name: str
    penalty: int
    paused: bool
    in_call: bool
    calls_taken: int
    status: int
    available: bool


@dataclass(frozen=True)
class CallerSnapshot:
    channel: str
    position: int
    wait_s: float


@dataclass(frozen=True)
class QueueSnapshot:
    name: str
    members: tuple[MemberSnapshot, ...]
    callers: tuple[CallerSnapshot, ...]
    completed: int
    abandoned: int


class PbxSim:
    def __init__(self, config: SimConfig | None = None, clock: SimClock | None = None) -> None:
        self.config = config or SimConfig()
        self.clock = clock or SimClock(self.config.speed, self.config.start_epoch)
        self.core = PbxCore(self.config, self.clock)
        self._ami = AmiServer(self.core)
        self.ami_port = 0
        self._started = False

    async def start(self) -> None:
        self.ami_port = await self._ami.start(self.config.host, self.config.port)
        self._started = True
        log.info("pbxsim running at speed %g with queues %s", self.clock.speed,
                 ", ".join(self.core.queues.queues))

    async def stop(self) -> None:
        await self._ami.stop()
        await self.core.tasks.close()
        self._started = False
        log.info("pbxsim stopped")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- setup and fault injection -------------------------------------------------------------
    @property
    def globals(self) -> dict[str, str]:
        return self.core.globals

    def add_agent(self, spec: AgentSpec) -> None:
        self.core.agents[spec.interface.lower()] = spec

    def queue_add(self, queue: str, interface: str, penalty: int = 0,
                  member_name: str | None = None, paused: bool = False,
                  state_interface: str | None = None, reason: str = "") -> None:
        """Exactly what AMI QueueAdd does (events included), for test and demo setup."""
        res = self.core.queues.add_member(queue, interface, penalty=penalty, paused=paused,
                                          membername=member_name or "",
                                          state_interface=state_interface or "", reason=reason)
        if res is not Res.OKAY:
            raise ValueError(f"QueueAdd {interface} to {queue}: {res.value}")

    async def place_call(self, script: CitizenScript) -> CallHandle:
        return place_call(self.core, script)

    def expect_call(self, exten: str, context: str, script: CitizenScript
                    ) -> asyncio.Future[CallHandle]:
        """The next Originate of ``Local/<exten>@<context>`` reaches a simulated citizen
        (``script``: keys for its prompts, ``answer_after_s``) instead of the dialplan; the
        future gets the call's handle once it is dialled."""
        fut: asyncio.Future[CallHandle] = asyncio.get_running_loop().create_future()
        self.core.expected_calls[(context, exten)] = (script, fut)
        return fut

    def drop_ami_connections(self) -> int:
        return self._ami.drop_all()

    def ami_outage(self, down: bool) -> int:
        """A network outage between the service and Asterisk: while ``down``, every AMI
        connection is dropped and new ones are closed at once; calls go on meanwhile."""
        self._ami.refusing = down
        return self._ami.drop_all() if down else 0

    @property
    def ami_client_count(self) -> int:
        return self._ami.client_count

    def channel_names(self) -> list[str]:
        return [c.name for c in self.core.channels]

    def channel_variable(self, channel: str, name: str) -> str | None:
        """A channel variable (also of a channel that already hung up); None if unset."""
        chan = self.core.channels.get(channel)
        if chan is not None:
            return chan.variables.get(name)
        return self.core.channels.ended_variables.get(channel, {}).get(name)

    @property
    def login_attempts(self) -> int:
        """AMI Login actions received so far (accepted or refused)."""
        return self.core.login_attempts

    def queue_snapshot(self) -> dict[str, QueueSnapshot]:
        core = self.core
        now = core.clock.now()
        out: dict[str, QueueSnapshot] = {}
        for name, q in core.queues.queues.items():
            members = tuple(
                MemberSnapshot(m.interface, m.membername, m.penalty, m.paused,
                               core.devices.use(m.interface).in_call, m.calls_taken,
                               core.queues.status(m),
                               core.queues.ringable(m, None, q)
                               and not core.devices.use(m.interface).in_call)
                for m in q.members.values())
            callers = tuple(CallerSnapshot(c.chan.name, i, round(now - c.start, 3))
                            for i, c in enumerate(q.callers, 1))
            out[name] = QueueSnapshot(name, members, callers, q.stats.completed,
                                      q.stats.abandoned)
        return out
