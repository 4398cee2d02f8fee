"""One Asterisk the service drives: its AMI link and everything that lives on that link.

Queues, channels and Uniqueids belong to one Asterisk, so each node has its own calls, queue
state, router, rebalancer and heartbeat; the case store, recorder, topic catalogue and speech
recognition are shared by all nodes and passed in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace

from cases.store import CaseStore
from dialplan.extensions import CONTEXT, agi_priority
from dialplan.queues import QueueSettings
from ivr.ami.link import AmiLink
from ivr.call_state import SessionDeps
from ivr.calls import CallRegistry
from ivr.case_recorder import CaseRecorder
from ivr.config import AmiConfig, HotlineConfig
from ivr.heartbeat import Heartbeat
from ivr.speech_input import SpeechInput
from routing.live_state import LiveQueues, QueueStateFeed
from routing.policy import RoutingPolicy
from routing.rebalancer import PenaltyRebalancer
from routing.router import Router
from routing.topics import TopicCatalogue

log = logging.getLogger("hotline.service")


class AsteriskNode:
    def __init__(self, name: str, ami: AmiConfig, config: HotlineConfig, *,
                 recorder: CaseRecorder, store: CaseStore, catalogue: TopicCatalogue,
                 policy: RoutingPolicy | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        self.name = name
        self.ami = ami
        self.link = AmiLink(ami, name=f"ami-{name}")
        # Only the queues we route to: the Asterisk may serve other teams' queues too.
        self.live = LiveQueues(clock or time.monotonic,
                               managed=frozenset(g.queue for g in config.routing.groups),
                               wrapup_s=QueueSettings().wrapup_s)
        self.queue_feed = QueueStateFeed(self.link, self.live, config.routing.resync_interval_s)
        # Shared by the service's nodes: the admin console tunes one policy for them all.
        policy = policy or RoutingPolicy(config.routing.policy)
        self.policy = policy
        self.router = Router(catalogue, config.routing.groups, config.ivr.default_group,
                             strategy=config.routing.strategy, policy=policy, live=self.live)
        self.rebalancer = PenaltyRebalancer(self.link, self.live, policy,
                                            config.routing.rebalance_interval_s)
        deps = SessionDeps(link=self.link, recorder=recorder, catalogue=catalogue,
                           router=self.router, ivr=config.ivr,
                           agi_timeout_s=ami.action_timeout_s, cases=store,
                           group_queues={g.name: g.queue for g in config.routing.groups})
        self.calls = CallRegistry(self.link, deps, node=name, locale=config.service.locale,
                                  agi_at=(CONTEXT, agi_priority(config.ivr.watchdog_s)))
        self.heartbeat = Heartbeat(self.link, ami.heartbeat_interval_s)
        self._rebalance = (config.routing.strategy == "expected_wait"
                           and config.routing.policy.park_helpers)

    def use_speech(self, speech: SpeechInput, locale: str) -> None:
        self.calls.deps = replace(self.calls.deps, speech=speech, speech_locale=locale)

    def start(self) -> None:
        self.link.start()
        self.heartbeat.start()
        self.queue_feed.start()
        if self._rebalance:
            self.rebalancer.start()
        log.info("node %r: AMI %s:%s", self.name, self.ami.host, self.ami.port)

    async def stop(self) -> None:
        """Idempotent. Calls in progress stay parked in Asterisk for the next instance."""
        await self.heartbeat.stop()
        await self.queue_feed.stop()
        await self.rebalancer.stop()
        await self.calls.stop()
        await self.link.stop()
