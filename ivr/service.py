"""Composition root: builds every part once from the configuration and wires them together.

Nothing else constructs shared objects; each part gets what it needs passed in.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from cases.errors import CaseStoreUnavailable
from cases.store import CaseStore
from ivr.case_journal import CaseJournal
from ivr.case_recorder import CaseRecorder
from ivr.config import HotlineConfig
from ivr.menus.survey import SurveyDialer
from ivr.node import AsteriskNode
from ivr.speech_input import SpeechInput
from ivr.survey_scheduler import SurveyScheduler
from routing.policy import RoutingPolicy
from routing.topics import TopicCatalogue
from speech.audiosocket_server import AudioSocketServer
from speech.engine import SpeechEngine, SpeechUnavailable

log = logging.getLogger("hotline.service")


class HotlineService:
    def __init__(self, config: HotlineConfig, *,
                 speech_engine: SpeechEngine | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        """``speech_engine``: an engine whose model is already loaded (tests share one);
        by default the service loads ``speech.model_path`` at start. ``clock``: Asterisk's
        time in seconds (the demo passes pbxsim's accelerated clock), for rate estimates."""
        self.config = config
        self.speech_engine = speech_engine
        self.audiosocket: AudioSocketServer | None = None
        next_open = config.callback_hours()     # callbacks fall due within these
        self.store = CaseStore(config.database.url, secret_key=config.database.secret_key,
                               timezone=config.service.timezone, calling_hours=next_open)
        # Case writes run on a thread of their own, with a store of their own: the ORM's
        # work never waits in line ahead of a caller's AMI events.
        self.recorder = CaseRecorder(store_factory=lambda: CaseStore(
            config.database.url, secret_key=config.database.secret_key,
            timezone=config.service.timezone, calling_hours=next_open), journal=CaseJournal(
                config.database.journal_path(config.service.node)))
        self.catalogue = TopicCatalogue.from_config(config.topics)
        # One per Asterisk, [ami] first; they share the store, recorder, speech and the routing
        # policy (so parameters changed in the admin console apply on every Asterisk).
        self.policy = RoutingPolicy(config.routing.policy)
        self.nodes = [AsteriskNode(name, ami, config, recorder=self.recorder,
                                   store=self.store, catalogue=self.catalogue,
                                   policy=self.policy, clock=clock)
                      for name, ami in config.ami.endpoints(config.service.node)]
        first = self.nodes[0]
        # The first node's parts, for the web console and the demo (single-node views).
        self.link, self.calls, self.live = first.link, first.calls, first.live
        self.router, self.rebalancer = first.router, first.rebalancer
        self.heartbeat, self.queue_feed = first.heartbeat, first.queue_feed
        # 回访: the centre calls a citizen about a handled case (surveys.call(number))
        # through the first node whose AMI link is up.
        self.surveys = SurveyDialer([n.link for n in self.nodes], self.store,
                                    config.ivr.survey, config.ivr.menu_for)
        self.survey_scheduler = (SurveyScheduler(
            self.store, self.surveys, config.ivr.survey, config.hours_timezone)
            if config.ivr.survey.auto else None)
        self._store_opener: asyncio.Task[None] | None = None

    def node(self, name: str) -> AsteriskNode:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    async def start(self) -> None:
        try:
            await self.store.open()
        except CaseStoreUnavailable as e:
            # Calls must still be answered and routed: cases wait in the recorder.
            log.error("case store unavailable at start (%s); routing calls anyway and "
                      "retrying in the background", e)
            self._store_opener = asyncio.create_task(self._open_store_later(),
                                                     name="case-store-open")
        self.recorder.start()
        await self._start_speech()
        for node in self.nodes:
            node.start()
        if self.survey_scheduler is not None:
            self.survey_scheduler.start()
        log.info("hotline started: node(s) %s, cases in %s",
                 ", ".join(repr(n.name) for n in self.nodes),
                 _safe_url(self.config.database.url))

    async def _start_speech(self) -> None:
        cfg = self.config
        if not cfg.speech.enabled:
            return
        try:
            engine = self.speech_engine or SpeechEngine(cfg.speech.model_path or None)
            mode = {"fast": "transcription_fast", "full": "transcription", "off": None}[
                cfg.speech.transcription]
            await engine.load(fast=mode == "transcription_fast")
            if mode == "transcription_fast":
                await engine.load()    # spotting uses the model as shipped
            server = AudioSocketServer(cfg.audiosocket.listen_host, cfg.audiosocket.listen_port)
            await server.start()
        except (SpeechUnavailable, OSError) as e:
            log.error("speech recognition unavailable, callers will use keys: %s", e)
            return
        self.speech_engine = engine
        self.audiosocket = server
        advertise = cfg.audiosocket.advertise
        if cfg.audiosocket.listen_port == 0:   # tests: the port the OS chose
            advertise = f"{advertise.rsplit(':', 1)[0]}:{server.port}"
        speech = SpeechInput(server, engine, self.catalogue, advertise=advertise,
                             max_utterance_s=cfg.speech.max_utterance_s,
                             transcription=mode)  # type: ignore[arg-type]
        for node in self.nodes:
            node.use_speech(speech, cfg.speech.locale)
        log.info("speech: %s model %s, AudioSocket on %s:%s", cfg.speech.locale,
                 engine.model_path, cfg.audiosocket.listen_host, server.port)

    async def _open_store_later(self) -> None:
        delay = 1.0
        while True:
            await asyncio.sleep(delay)
            try:
                await self.store.open()
            except CaseStoreUnavailable as e:
                log.warning("case store still unavailable: %s", e)
                delay = min(delay * 2, 30.0)
            except Exception as e:  # noqa: BLE001 - the task must outlive it: calls go on
                # Reachable but refused (another node's secret key): an operator's fix, and
                # a restart; case writes wait in the journal meanwhile.
                log.error("case store cannot be used: %s; cases wait in the journal", e)
                delay = 30.0
            else:
                log.info("case store reachable again")
                return

    async def stop(self) -> None:
        """Idempotent: a second call finds everything already stopped."""
        if self._store_opener is not None:
            self._store_opener.cancel()
            await asyncio.gather(self._store_opener, return_exceptions=True)
        if self.survey_scheduler is not None:
            await self.survey_scheduler.stop()
        for node in self.nodes:
            await node.stop()
        if self.audiosocket is not None:
            await self.audiosocket.stop()
        await self.recorder.stop()
        await self.store.close()


def _safe_url(url: str) -> str:
    # Never log a database password.
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        creds, _, host = rest.rpartition("@")
        user = creds.split(":", 1)[0]
        return f"{scheme}{sep}{user}:***@{host}" if ":" in creds else url
    return url
