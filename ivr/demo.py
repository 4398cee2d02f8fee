"""``hotline demo``: the whole service against pbxsim, with simulated citizens and agents.

Everything real but Asterisk: the service logs in over TCP AMI, drives each call with async
AGI, writes cases to the configured database and queues callers in pbxsim's app_queue.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from dataclasses import asdict, dataclass

from ivr.config import HotlineConfig
from ivr.service import HotlineService
from pbxsim import AgentSpec, CitizenScript, PbxSim, SimConfig
from speech.engine import SpeechEngine, SpeechUnavailable

log = logging.getLogger("hotline.demo")

# Shape of the simulated day: mean talk time (sim seconds) and offered load.
TALK_MEAN_S = 90.0
LOAD = 0.85
PATIENCE_MEAN_S = 240.0
SILENT_SHARE = 0.1      # callers who press nothing and go to the general group


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


class _ErrorCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def _queues_conf(cfg: HotlineConfig) -> str:
    parts = ["[general]\npersistentmembers = no\n"]
    for g in cfg.routing.groups:
        parts.append(f"[{g.queue}]\nstrategy = leastrecent\ntimeout = 15\nretry = 1\n"
                     "wrapuptime = 5\njoinempty = yes\nleavewhenempty = no\nringinuse = no\n")
    return "\n".join(parts)


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
    if cfg.routing.strategy != "static":
        runs.append(("static", cfg.model_copy(update={
            "routing": cfg.routing.model_copy(update={"strategy": "static"}),
            # Another node name: both pbxsims number their channels alike.
            "service": cfg.service.model_copy(update={"node": f"{cfg.service.node}-static"}),
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
                                    queues=_queues_conf(cfg)))
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
        sim.add_agent(AgentSpec(
            interface=interface, name=name, answer_delay_s=rng.uniform(1.0, 3.0),
            talk_time_s=lambda r=random.Random(rng.random()): r.expovariate(1 / TALK_MEAN_S)))
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
    for n in range(opts.calls):
        topic = None if (not keyed or rng.random() < SILENT_SHARE) else rng.choice(keyed)
        script = CitizenScript(
            caller_num=f"138{rng.randrange(10**8):08d}", caller_name="",
            dnid="12345", context="ivr",
            # A caller asked again presses again (a key can land between two prompts).
            keys=[(topic.key, rng.uniform(0.2, 0.8))] * cfg.ivr.max_attempts
            if topic and topic.key else [],
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
    topic_correct = topic_total = 0
    waits: list[float] = []
    for (call, want), outcome in zip(pending, outcomes, strict=True):
        case = await service.store.get_by_call(cfg.service.node, outcome.caller_uniqueid)
        if case is None:
            continue
        cases += 1
        intended[case.number] = want
        if want is not None:
            topic_total += 1
            topic_correct += case.topic == want
        if outcome.answered_by and case.wait_s is not None:
            waits.append(case.wait_s)
    return DemoSummary(calls=len(pending), answered=answered,
                       abandoned=len(pending) - answered, cases_created=cases,
                       topic_correct=topic_correct, topic_total=topic_total,
                       asa_s=round(sum(waits) / len(waits), 2) if waits else 0.0, errors=0,
                       routing=cfg.routing.strategy)


def _print(s: DemoSummary, opts: DemoOptions) -> None:
    print(f"{s.routing} routing: {s.calls} calls: {s.answered} answered, "
          f"{s.abandoned} abandoned; "
          f"{s.cases_created} cases; topics {s.topic_correct}/{s.topic_total} right; "
          f"ASA {s.asa_s:.1f}s; {s.errors} errors", flush=True)
    if opts.as_json:
        print(json.dumps(asdict(s)), flush=True)
