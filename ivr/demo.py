"""``hotline demo``: the whole service against pbxsim, with simulated citizens and agents.

Everything real but Asterisk: the service logs in over TCP AMI, drives each call with async
AGI, writes cases to the configured database and queues callers in pbxsim's app_queue.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

from ivr.config import HotlineConfig
from ivr.menus.engine import paths_of
from ivr.menus.waiting import EXIT_CONTEXT
from ivr.service import HotlineService
from pbxsim import AgentSpec, CitizenScript, PbxSim, SimConfig
from pbxsim.config import DEFAULT_DIALPLAN
from speech.engine import SpeechEngine, SpeechUnavailable

log = logging.getLogger("hotline.demo")

# Shape of the simulated day: mean talk time (sim seconds) and offered load.
TALK_MEAN_S = 90.0
LOAD = 0.85
PATIENCE_MEAN_S = 240.0
SILENT_SHARE = 0.1      # callers who press nothing and go to the general group
# Callers who use the rest of the menu instead of a topic key (shares of all callers): a
# person (0), the case status lookup (6 and the number of an earlier case), an emergency (7,
# then 1-3), a callback instead of waiting (8 at the greeting). Of the topic callers, some
# press the callback key once they have waited in the queue a while.
MENU_SHARES = (("human", 0.05), ("status", 0.06), ("emergency", 0.05), ("callback", 0.05))
QUEUE_CALLBACK_SHARE = 0.1


@dataclass(frozen=True, slots=True)
class DemoOptions:
    calls: int = 20
    agents: int = 6
    speed: float = 20.0
    seed: int = 1
    as_json: bool = False
    serve: bool = False


@dataclass(slots=True)
class DemoSummary:
    calls: int
    answered: int
    abandoned: int
    cases_created: int
    topic_correct: int
    topic_total: int
    asa_s: float
    errors: int
    routing: str = ""
    asa_s_static: float | None = None
    # Where the menus left the calls: topic, human, status, emergency, callback, ... (see
    # ivr.menus.engine.menu_path); a caller who pressed the callback key in the queue
    # counts as "callback".
    menu_paths: dict[str, int] = field(default_factory=dict)


class _ErrorCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def _callback_keys(cfg: HotlineConfig) -> list[str]:
    return sorted({m.waiting.callback_key for m in cfg.ivr.menus.values()
                   if m.waiting is not None})


def _queues_conf(cfg: HotlineConfig) -> str:
    parts = ["[general]\npersistentmembers = no\n"]
    # The callback key leaves the queue as in the generated queues.conf (exit context).
    exit_context = f"context = {EXIT_CONTEXT}\n" if _callback_keys(cfg) else ""
    for g in cfg.routing.groups:
        parts.append(f"[{g.queue}]\nstrategy = leastrecent\ntimeout = 15\nretry = 1\n"
                     "wrapuptime = 5\njoinempty = yes\nleavewhenempty = no\nringinuse = no\n"
                     + exit_context)
    return "\n".join(parts)


def _dialplan(cfg: HotlineConfig) -> str:
    keys = _callback_keys(cfg)
    if not keys:
        return DEFAULT_DIALPLAN
    return DEFAULT_DIALPLAN + f"[{EXIT_CONTEXT}]\n" + "".join(
        f"exten => {k},1,Hangup()\n" for k in keys)


async def run_demo(cfg: HotlineConfig, opts: DemoOptions) -> int:
    """Runs the configured routing and, beside it on an identical pbxsim with the same
    callers, static routing (a topic's first group only), so the gain is measured in one run."""
    errors = _ErrorCounter()
    logging.getLogger().addHandler(errors)
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        logging.getLogger("pbxsim").setLevel(logging.WARNING)   # the service's log is the story
    # Both services listen for AudioSocket on a free port and share one loaded model.
    cfg = cfg.model_copy(update={"audiosocket": cfg.audiosocket.model_copy(
        update={"listen_port": 0})})
    engine = await _load_engine(cfg)
    runs = [("ours", cfg)]
    # The comparison run's cases are not the demo's: they go to a scratch database, so the
    # configured one holds one case per simulated call.
    scratch = tempfile.TemporaryDirectory(prefix="hotline-demo-")
    if cfg.routing.strategy != "static":
        runs.append(("static", cfg.model_copy(update={
            "routing": cfg.routing.model_copy(update={"strategy": "static"}),
            # Another node name: both pbxsims number their channels alike.
            "service": cfg.service.model_copy(update={"node": f"{cfg.service.node}-static"}),
            "database": cfg.database.model_copy(update={
                "url": f"sqlite+aiosqlite:///{Path(scratch.name) / 'static.db'}"}),
        })))
    stacks = [_Stack(c, opts, engine) for _, c in runs]
    try:
        for st in stacks:
            await st.start()
        results = await asyncio.gather(*(_simulate(st, opts) for st in stacks))
        summary = results[0]
        summary.errors = errors.count
        if len(results) > 1:
            summary.asa_s_static = results[1].asa_s
            print(f"static routing, same callers: {results[1].answered} answered, "
                  f"{results[1].abandoned} abandoned, ASA {results[1].asa_s:.1f}s", flush=True)
        _print(summary, opts)
        if opts.serve:
            from console.app import WebConsole
            from ivr.cli import _wait_for_signal
            assert stacks[0].service is not None     # started above
            web = WebConsole(stacks[0].service, cfg.web)
            await web.start()
            print(f"serving on http://{cfg.web.host}:{cfg.web.port}/ — Ctrl-C to stop",
                  flush=True)
            try:
                await _wait_for_signal()
            finally:
                await web.stop()
        return 0 if summary.errors == 0 else 1
    finally:
        for st in stacks:
            await st.stop()
        if engine is not None:
            engine.close()
        scratch.cleanup()
        logging.getLogger().removeHandler(errors)


async def _load_engine(cfg: HotlineConfig) -> SpeechEngine | None:
    if not cfg.speech.enabled:
        return None
    try:
        engine = SpeechEngine(cfg.speech.model_path or None)
        await engine.load()
        if cfg.speech.transcription == "fast":
            await engine.load(fast=True)
        return engine
    except SpeechUnavailable as e:
        log.error("speech recognition unavailable, callers will use keys: %s", e)
        return None


class _Stack:
    """One pbxsim and one service wired to it."""

    def __init__(self, cfg: HotlineConfig, opts: DemoOptions,
                 engine: SpeechEngine | None) -> None:
        self.sim = PbxSim(SimConfig(host="127.0.0.1", port=0, username=cfg.ami.username,
                                    secret=cfg.ami.secret, speed=opts.speed,
                                    queues=_queues_conf(cfg), dialplan=_dialplan(cfg)))
        self.cfg = cfg
        self.engine = engine
        self.service: HotlineService | None = None

    async def start(self) -> None:
        await self.sim.start()
        self.cfg = self.cfg.model_copy(update={"ami": self.cfg.ami.model_copy(update={
            "host": "127.0.0.1", "port": self.sim.ami_port})})
        if self.engine is None:
            self.cfg = self.cfg.model_copy(update={"speech": self.cfg.speech.model_copy(
                update={"enabled": False})})
        self.service = HotlineService(self.cfg, speech_engine=self.engine,
                                      clock=self.sim.clock.now)
        await self.service.start()
        await self.service.link.wait_up(timeout=10)

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.stop()
        await self.sim.stop()


async def _simulate(st: _Stack, opts: DemoOptions) -> DemoSummary:
    assert st.service is not None
    rng = random.Random(opts.seed)      # the same callers and agents in every run
    await _staff(st.service, st.sim, st.cfg, opts, rng)
    return await _place_calls(st.service, st.sim, st.cfg, opts, rng)


async def _staff(service: HotlineService, sim: PbxSim, cfg: HotlineConfig,
                 opts: DemoOptions, rng: random.Random) -> None:
    """Agents log in the way an admin's console does it: QueueAdd over AMI. Each has one
    primary group (penalty 0) and helps the general group (penalty 1)."""
    skill_groups = [g for g in cfg.routing.groups if g.name != cfg.ivr.default_group]
    general = cfg.group(cfg.ivr.default_group)
    for i in range(opts.agents):
        ext = 1001 + i
        name, interface = f"agent{ext}", f"Local/{ext}@agents/n"
        talk = random.Random(rng.random())
        sim.add_agent(AgentSpec(
            interface=interface, name=name, answer_delay_s=rng.uniform(1.0, 3.0),
            talk_time_s=partial(talk.expovariate, 1 / TALK_MEAN_S)))
        primary = skill_groups[i % len(skill_groups)] if skill_groups else general
        await service.link.action("QueueAdd", {"Queue": primary.queue, "Interface": interface,
                                               "Penalty": "0", "MemberName": name})
        if primary is not general:
            await service.link.action("QueueAdd", {"Queue": general.queue,
                                                   "Interface": interface, "Penalty": "1",
                                                   "MemberName": name})


async def _place_calls(service: HotlineService, sim: PbxSim, cfg: HotlineConfig,
                       opts: DemoOptions, rng: random.Random) -> DemoSummary:
    keyed = [t for t in cfg.topics if t.key]
    rate = LOAD * opts.agents / TALK_MEAN_S          # calls per sim second
    intended: dict[str, str | None] = {}
    pending = []
    callback_key = (_callback_keys(cfg) or [""])[0]
    for n, kind in enumerate(_caller_kinds(opts.calls, rng)):
        topic = rng.choice(keyed) if kind == "topic" and keyed else None
        # Early in the 1 s prompt: a key pressed at its very end misses it (the 100 ms tone
        # ends after the prompt), and at the demo's speed a busy CPU delays presses.
        key_delay = rng.uniform(0.1, 0.5)
        queue_keys: list[tuple[str, float]] = []
        if topic is not None and topic.key:
            # A caller asked again presses again (a key can land between two prompts): once
            # per prompt that takes keys (a retry is the retry prompt, then the question).
            keys = [(topic.key, key_delay)] * (2 * cfg.ivr.max_attempts)
            if callback_key and rng.random() < QUEUE_CALLBACK_SHARE:
                queue_keys = [(callback_key, rng.uniform(20.0, 60.0))]
        else:
            keys = await _menu_keys(kind, service, rng, key_delay)
        script = caller_script(keys, key_delay, caller_num=f"138{rng.randrange(10**8):08d}",
                               keys_in_queue=queue_keys,
                               patience_s=rng.expovariate(1 / PATIENCE_MEAN_S))
        call = await sim.place_call(script)
        pending.append((call, topic.name if topic else None))
        await sim.clock.sleep(rng.expovariate(rate))
        if (n + 1) % max(1, opts.calls // 5) == 0:
            print(f"placed {n + 1}/{opts.calls} calls", flush=True)
    outcomes = await asyncio.gather(*(c.done for c, _ in pending))
    # Wait for the sessions to finish writing their cases.
    for _ in range(100):
        if not service.calls.sessions:
            break
        await asyncio.sleep(0.1)
    await service.recorder.drain()
    answered = sum(1 for o in outcomes if o.answered_by)
    cases = 0
    menu_paths: dict[str, int] = {}
    topic_correct = topic_total = 0
    waits: list[float] = []
    for (call, want), outcome in zip(pending, outcomes, strict=True):
        case = await service.store.get_by_call(cfg.service.node, outcome.caller_uniqueid)
        if case is None:
            continue
        cases += 1
        path = "callback" if "wait:callback" in case.ivr_path else paths_of(case.ivr_path)
        menu_paths[path] = menu_paths.get(path, 0) + 1
        intended[case.number] = want
        if want is not None:
            topic_total += 1
            topic_correct += case.topic == want
            if case.topic != want:
                log.warning("demo: a caller pressed the key of %s; case %s has topic %s "
                            "(path %s)", want, case.number, case.topic, list(case.ivr_path))
        if outcome.answered_by and case.wait_s is not None:
            waits.append(case.wait_s)
    return DemoSummary(calls=len(pending), answered=answered,
                       abandoned=len(pending) - answered, cases_created=cases,
                       topic_correct=topic_correct, topic_total=topic_total,
                       asa_s=round(sum(waits) / len(waits), 2) if waits else 0.0, errors=0,
                       routing=cfg.routing.strategy, menu_paths=dict(sorted(menu_paths.items())))


def caller_script(keys: Sequence[tuple[str, float]], key_delay: float, *, caller_num: str,
                  patience_s: float, keys_in_queue: Sequence[tuple[str, float]] = ()
                  ) -> CitizenScript:
    """A demo caller of 12345: ``keys`` answer the prompts one by one. A key that missed its
    prompt and was dropped (it landed after the prompt, before the IVR listened) is pressed
    again ``key_delay`` into the listening; a key the IVR heard is not. (Pressing the first
    key again at every listening made the emergency caller answer the emergency menu with
    the greeting's 7, and reach a person unadvised.)"""
    return CitizenScript(caller_num=caller_num, caller_name="", dnid="12345", context="ivr",
                         keys=keys, keys_in_queue=keys_in_queue,
                         repeat_dropped_keys_after_s=key_delay, patience_s=patience_s)


def _caller_kinds(calls: int, rng: random.Random) -> list[str]:
    """What each caller wants, in arrival order: every menu path its share of the calls (at
    least one each from 10 calls on, so a short demo shows them all), topics for the rest."""
    kinds: list[str] = []
    for kind, share in (("silent", SILENT_SHARE), *MENU_SHARES):
        kinds += [kind] * max(round(share * calls), 1 if calls >= 10 else 0)
    kinds = kinds[:calls]
    kinds += ["topic"] * (calls - len(kinds))
    rng.shuffle(kinds)
    return kinds


async def _menu_keys(kind: str, service: HotlineService, rng: random.Random,
                     delay: float) -> list[tuple[str, float]]:
    """The keys of a caller who uses the shipped menu's other options."""
    if kind == "human":
        return [("0", delay)]
    if kind == "emergency":
        return [("7", delay), (rng.choice("123"), delay)]
    if kind == "callback":
        return [("8", delay)]
    if kind == "status":
        # The number of an earlier caller's case; a caller who mistypes it (or calls before
        # anyone else did) is asked again, then goes to a person.
        earlier = await service.store.list_cases(limit=10)
        number = rng.choice(earlier).number if earlier else "20000101000001"
        if rng.random() < 0.3:
            number = number[:-3] + "999"
        return [("6", delay), (number + "#", delay), (number + "#", delay)]
    return []


def _print(s: DemoSummary, opts: DemoOptions) -> None:
    print(f"{s.routing} routing: {s.calls} calls: {s.answered} answered, "
          f"{s.abandoned} abandoned; "
          f"{s.cases_created} cases; topics {s.topic_correct}/{s.topic_total} right; "
          f"ASA {s.asa_s:.1f}s; {s.errors} errors", flush=True)
    print("menu paths: " + ", ".join(f"{k} {v}" for k, v in s.menu_paths.items()), flush=True)
    if opts.as_json:
        print(json.dumps(asdict(s)), flush=True)
