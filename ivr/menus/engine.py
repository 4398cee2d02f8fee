"""Walks a menu against a ``CallIO`` until the caller's need is settled: a topic or group to
queue to, a person, an emergency handled, a message left, a callback asked for, or a
self-service end (status heard).

What every caller gets, whatever the menu says: a key stops a prompt (barge-in); no input
and wrong keys are retried (``attempts``), then the node's ``on_failure`` (a person unless
configured otherwise); ``0`` reaches a person from every node; a topic flagged as an
emergency, by key or by speech, gets the menu's emergency handling (heard by speech where
ordinary topics are heard too, once its key confirms it: ``spoken_emergency``); outside the
opening hours the menu's ``after_hours`` node runs instead of its start.

The engine does no I/O of its own and never routes: the session turns the ``MenuOutcome``
into a queue. Each step it takes is appended to ``trail`` (the case's ``ivr_path``) as
``<node>:key:<k>``, ``<node>:no-input``, ``loop:menu``, ``<node>:speech:<topic or ?>``, ``emergency:...``,
``status:...``, ``message:...``, ``lang:<menu>`` and ``hours:closed``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from ivr.menus.hours import OpeningHours
from ivr.menus.io import (
    ALL_KEYS,
    HUMAN_KEY,
    CallIO,
    Heard,
    MenuServices,
    Recording,
    TransferTarget,
)
from ivr.menus.model import HUMAN, ActionConfig, MenuConfig, NodeConfig
from ivr.menus.status import read_status
from routing.cjk import normalize
from routing.topics import TopicCatalogue
from speech.spotting import Expect

log = logging.getLogger("hotline.menu")

MAX_STEPS = 30          # node visits per call: a menu that loops sends the caller to a person

OutcomeKind = Literal["route", "human", "transferred", "message", "callback", "done"]


@dataclass(frozen=True, slots=True)
class MenuOutcome:
    """Where the menu leaves the call. ``route``: to ``topic`` (or ``group``); ``human``: the
    default group; ``transferred``: an emergency handed over; ``message``: a message was left
    (``recording``); ``callback``: the caller asked to be called back; ``done``: served by the
    IVR itself (status heard, goodbye)."""
    kind: OutcomeKind
    menu: str
    topic: str | None = None
    group: str | None = None
    reason: str = ""
    confidence: float = 1.0
    keywords: tuple[str, ...] = ()
    source: str = "key"              # "key" or "speech": how the topic was chosen
    emergency: bool = False
    recording: Recording | None = None


@dataclass(frozen=True, slots=True)
class Defaults:
    timeout_ms: int                   # ivr.input_timeout_ms
    attempts: int                     # ivr.max_attempts


@dataclass(frozen=True, slots=True)
class _Choice:
    action: ActionConfig
    source: str = "key"
    confidence: float = 1.0
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Jump:
    menu: str
    node: str
    keys_only: bool = False     # the node asks for a key: what speech heard needs confirming


# ivr_path entry summing up where the menu left the call: "menu:<path>" (see menu_path).
MENU_MARK = "menu:"


def menu_path(o: MenuOutcome, trail: list[str]) -> str:
    """The outcome's name in ``hotline demo``'s ``menu_paths``: ``topic``, ``group``,
    ``human``, ``emergency``, ``status`` (served by the status lookup), ``message``,
    ``callback`` or ``hangup``."""
    if o.emergency:
        return "emergency"
    if o.kind == "route":
        return "topic" if o.topic is not None else "group"
    if o.kind == "done":
        return "status" if any(t.startswith("status:found") for t in trail) else "hangup"
    return o.kind


def paths_of(trail: Iterable[object]) -> str:
    """The menu path of a finished call from its case's ``ivr_path``: the menu's own mark,
    else what the trail shows (a caller who hung up inside the menu: ``emergency`` when
    told to dial 119/110, ``hangup`` otherwise)."""
    ivr_path = [step for step in trail if isinstance(step, str)]
    for step in ivr_path:
        if step.startswith(MENU_MARK):
            return step.removeprefix(MENU_MARK)
    if any(step.startswith("emergency:") for step in ivr_path):
        return "emergency"
    if any(step.startswith("survey:") for step in ivr_path):
        return "survey"
    return "hangup"


def channel_language(locale: str) -> str:
    """CHANNEL(language) of a locale (``zh-CN`` -> ``zh_CN``), as the generated sounds
    directories expect it."""
    return locale.replace("-", "_")


class MenuEngine:
    def __init__(self, menus: Mapping[str, MenuConfig], catalogue: TopicCatalogue,
                 services: MenuServices, defaults: Defaults, *, timezone: str,
                 trail: list[str], call_id: str = "") -> None:
        self._menus = menus
        self._catalogue = catalogue
        self._services = services
        self._defaults = defaults
        self._zone = ZoneInfo(timezone)
        self.trail = trail
        self._call = call_id
        self.menu_name = ""

    # ---- the walk ----------------------------------------------------------------------
    @property
    def menu(self) -> MenuConfig:
        return self._menus[self.menu_name]

    def sound(self, prompt: str) -> str:
        return self.menu.sound_of(self.menu_name, prompt)

    async def run(self, io: CallIO, menu: str) -> MenuOutcome:
        self.menu_name = menu
        m = self.menu
        node = m.start
        hours = OpeningHours.of(m.hours, m.holidays, m.workdays, str(self._zone))
        if not hours.always_open and not hours.is_open(self._services.now()):
            self.trail.append("hours:closed")
            log.info("call %s: outside the opening hours of menu %s", self._call, menu)
            node = m.after_hours or m.start
        keys_only = False
        for _ in range(MAX_STEPS):
            choice = await self._node(io, node, keys_only)
            step = choice if isinstance(choice, _Jump) else await self._act(io, choice)
            if isinstance(step, MenuOutcome):
                return step
            if step.menu != self.menu_name:
                self.menu_name = step.menu
                await io.set_var("CHANNEL(language)", channel_language(self.menu.language))
            node, keys_only = step.node, step.keys_only
        log.warning("call %s: menu %s visited %d nodes; to a person", self._call, menu,
                    MAX_STEPS)
        self.trail.append("loop:menu")
        return self._human("menu loop")

    def _human(self, reason: str) -> MenuOutcome:
        return MenuOutcome("human", self.menu_name, reason=reason)

    # ---- one node ------------------------------------------------------------------------
    def _keymap(self, node: NodeConfig) -> dict[str, ActionConfig]:
        keys: dict[str, ActionConfig] = {}
        if node.topic_keys:
            for t in self._catalogue.topics:
                if t.key:
                    keys[t.key] = ActionConfig(do="route", topic=t.name)
        keys.update(node.keys)
        keys.setdefault(HUMAN_KEY, HUMAN)       # a person from every node
        return keys

    async def _node(self, io: CallIO, name: str, keys_only: bool = False) -> _Choice | _Jump:
        node = self.menu.nodes[name]
        keys = self._keymap(node)
        # Confirming what speech heard: one asking, then the node's failure (a person).
        attempts = 1 if keys_only else node.attempts or self._defaults.attempts
        timeout = node.timeout_ms or self._defaults.timeout_ms
        topics = self._speech_topics(node, keys)
        # Where speech can only name an emergency, the spotter listens for those words
        # alone: every way out of such a node ends with a person anyway, and person words
        # in the grammar compete with the emergency words (measured: "화재 신고" heard as
        # 상담원). Elsewhere a caller asking for a person is heard even without a transcript.
        emergencies_only = topics is not None and all(
            self._catalogue.is_emergency(t) for t in topics)
        expect = Expect(topics, () if emergencies_only else tuple(self.menu.human_words))
        retry: str | None = None
        for attempt in range(1, attempts + 1):
            prompts = [self.sound(p) for p in ([retry] if retry else []) + node.prompts]
            key, heard = await self._collect(io, node, prompts, timeout, expect, keys_only)
            if heard is not None:
                # Only what this node offers: speech that means something else here (an
                # ordinary topic at the emergency menu) is not understood, and asked again.
                topic = heard.topic if expect.topics is None or heard.topic in expect.topics \
                    else None
                self.trail.append(f"{name}:speech:{topic or '?'}")
                # An emergency first (its handling ends with a person too, ahead of the
                # others), then a request for a person, then a department.
                if self._asks_for_person(heard) and not self._catalogue.is_emergency(topic):
                    return _Choice(HUMAN, "speech")
                confirm = (self._confirming_node(topic, name)
                           if self._catalogue.is_emergency(topic) and not emergencies_only
                           else None)
                if confirm is not None:
                    log.info("call %s: heard emergency %s at %s; asking for its key at %s",
                             self._call, topic, name, confirm)
                    return _Jump(self.menu_name, confirm, keys_only=True)
                if topic is not None:
                    return _Choice(ActionConfig(do="route", topic=topic), "speech",
                                   heard.confidence, heard.keywords)
                retry = self.menu.retry_invalid
                continue
            if key is None:
                self.trail.append(f"{name}:no-input")
                retry = self.menu.retry_no_input
                continue
            self.trail.append(f"{name}:key:{key}")
            if key in keys:
                return _Choice(keys[key])
            log.info("call %s: key %r means nothing at %s (attempt %d)", self._call, key,
                     name, attempt)
            retry = self.menu.retry_invalid
        # An emergency not confirmed: a person, whatever the node does on failure otherwise.
        return _Choice(HUMAN if keys_only else node.on_failure, "failure")

    def _asks_for_person(self, heard: Heard) -> bool:
        """A person word in the transcript or among the spotter's words (the spotter listens
        for them, so the request is heard with transcription off too)."""
        lang = self.menu.language
        said = [normalize(heard.text, lang), normalize(" ".join(heard.spotted), lang)]
        words = [normalize(w, lang) for w in self.menu.human_words]
        return any(w and w in s for w in words for s in said)

    def _speech_topics(self, node: NodeConfig, keys: dict[str, ActionConfig]
                       ) -> frozenset[str] | None:
        """The topics speech may choose at ``node``: those its keys offer (an emergency menu:
        its emergencies); every topic where the catalogue's keys apply or no key names one."""
        if node.topic_keys:
            return None
        named = frozenset(a.topic for a in keys.values()
                          if a.do in ("route", "emergency") and a.topic is not None)
        return named or None

    def _confirming_node(self, topic: str | None, here: str) -> str | None:
        """Where a spoken emergency is confirmed: a node of the menu offering ``topic`` by
        key, one that offers emergencies only if there is such, another than ``here`` if
        there is such (None: act on it at once, as with ``spoken_emergency = "act"`` or a
        menu without one)."""
        if self.menu.spoken_emergency != "confirm" or topic is None:
            return None
        offering = [name for name, node in self.menu.nodes.items() if any(
            a.do in ("emergency", "route") and a.topic == topic for a in node.keys.values())]

        def rank(name: str) -> tuple[bool, bool]:
            topics = [a.topic for a in self.menu.nodes[name].keys.values() if a.topic]
            return (not all(self._catalogue.is_emergency(t) for t in topics), name == here)

        return min(offering, key=rank) if offering else None

    async def _collect(self, io: CallIO, node: NodeConfig, prompts: list[str], timeout: int,
                       expect: Expect, keys_only: bool = False
                       ) -> tuple[str | None, Heard | None]:
        """One attempt: (key, None), (None, what was heard) or (None, None) for silence."""
        if node.speech and io.can_listen and not keys_only:
            key = await io.play(prompts, ALL_KEYS)
            if key is not None:
                return key, None
            heard = await io.listen(expect)
            if heard is None:
                # Speech broke for this call: the same question again, with keys.
                return await io.ask(prompts[-1], timeout, 1), None
            if heard.digits:
                return heard.digits[0], None
            if heard.no_speech:
                return None, None
            return None, heard
        if len(prompts) > 1:
            key = await io.play(prompts[:-1], ALL_KEYS)
            if key is not None:
                return key, None
        got = await io.ask(prompts[-1], timeout, 1)
        return (got[0] if got else None), None

    # ---- what a choice does ----------------------------------------------------------------
    async def _act(self, io: CallIO, choice: _Choice) -> MenuOutcome | _Jump:
        a = choice.action
        if a.prompt is not None:
            await io.play([self.sound(a.prompt)])
        if a.do == "goto":
            assert a.node is not None
            return _Jump(self.menu_name, a.node)
        if a.do == "language":
            assert a.menu is not None
            self.trail.append(f"lang:{a.menu}")
            return _Jump(a.menu, self._menus[a.menu].start)
        if a.do == "route" and a.topic is not None:
            if a.topic in self._catalogue and self._catalogue.get(a.topic).emergency:
                return await self._emergency(io, a.topic)
            return MenuOutcome("route", self.menu_name, topic=a.topic,
                               reason=f"{choice.source}: {a.topic}",
                               confidence=choice.confidence, keywords=choice.keywords,
                               source=choice.source)
        if a.do == "route":
            return MenuOutcome("route", self.menu_name, group=a.group,
                               reason=f"menu: group {a.group}")
        if a.do == "emergency":
            assert a.topic is not None
            return await self._emergency(io, a.topic)
        if a.do == "status":
            return await self._status(io)
        if a.do == "message":
            return await self._message(io)
        if a.do == "callback":
            self.trail.append("callback:asked")
            return MenuOutcome("callback", self.menu_name, reason="caller asked for a callback")
        if a.do == "hangup":
            return MenuOutcome("done", self.menu_name, reason="menu ended the call")
        return self._human("no valid input" if choice.source == "failure"
                           else "caller asked for a person")

    async def _emergency(self, io: CallIO, topic: str) -> MenuOutcome:
        em = self.menu.emergency.get(topic)
        self.trail.append(f"emergency:{topic}")
        log.warning("call %s: emergency %s", self._call, topic)
        if em is not None:
            if em.mode == "advise":
                # Marked before the advice: a caller who hangs up during it did as told.
                self.trail.append("emergency:advised")
            await io.play([self.sound(em.prompt)])
            if em.mode == "transfer":
                to = (TransferTarget("dial", em.dial, em.dial_timeout_s) if em.dial
                      else TransferTarget("redirect", em.redirect or ""))
                if await io.transfer(to):
                    self.trail.append("emergency:transferred")
                    return MenuOutcome("transferred", self.menu_name, topic=topic,
                                       emergency=True, reason=f"emergency {topic} transferred")
                self.trail.append("emergency:transfer-failed")
        # Still on the line: a person, ahead of the others (the router knows the topic).
        return MenuOutcome("route", self.menu_name, topic=topic, emergency=True,
                           reason=f"emergency {topic}, caller stayed on the line")

    async def _status(self, io: CallIO) -> MenuOutcome | _Jump:
        cfg = self.menu.status
        assert cfg is not None       # the configuration check makes sure of it
        found = await read_status(io, cfg, self.sound, self._services, self._zone,
                                  self._defaults.timeout_ms, self.trail)
        if not found:
            return self._human("case status: no case found")
        if cfg.then is not None:
            return _Jump(self.menu_name, cfg.then)
        return MenuOutcome("done", self.menu_name, reason="case status read back")

    async def _message(self, io: CallIO) -> MenuOutcome:
        cfg = self.menu.message
        assert cfg is not None
        await io.play([self.sound(cfg.intro)])
        rec = await io.record(cfg.max_s, cfg.silence_s)
        if rec is None:
            self.trail.append("message:failed")
            await io.play([self.sound(cfg.failed)])
            return MenuOutcome("callback", self.menu_name, reason="message not recorded")
        self.trail.append("message:recorded")
        await io.play([self.sound(cfg.thanks)])
        return MenuOutcome("message", self.menu_name, topic=rec.topic,
                           confidence=rec.confidence, recording=rec, source="speech",
                           reason=f"message of {rec.seconds:.0f}s")
