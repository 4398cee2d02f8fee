"""Runs the shipped menus against scripted callers on pbxsim over real AMI.

pbxsim runs the extensions.conf and queues.conf that ``hotline dialplan`` generates from the
same configuration the service runs with; the service walks the menus over async AGI. The
harness keeps its own AMI connection and records, per channel, every AGI command Asterisk
reports (AGIExecStart) with its result (AsyncAGIExec): the prompts played, the digits said,
the variables set.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cases.schemas import CallStart, CaseView
from dialplan import build_text
from ivr.ami.events import AmiEvent, AsyncAgiExec
from ivr.ami.link import AmiLink
from ivr.config import HotlineConfig
from ivr.service import HotlineService
from pbxsim import CitizenScript, PbxSim, SimConfig
from pbxsim.agi_commands import parse_args
from speech.engine import SpeechEngine
from tests.callpath_fixtures import service_config

HEARTBEAT = "HOTLINE_HEARTBEAT"


@dataclass
class AgiCommand:
    text: str
    result: str | None = None       # the raw result line, once reported

    @property
    def argv(self) -> list[str]:
        return parse_args(self.text)


@dataclass
class AgiLog:
    """Every AGI command per channel, in the order Asterisk ran them."""
    commands: dict[str, list[AgiCommand]] = field(default_factory=lambda: defaultdict(list))

    def on_event(self, ev: AmiEvent) -> None:
        channel = ev.fields.get("channel", "")
        if ev.name.lower() == "agiexecstart":
            self.commands[channel].append(AgiCommand(ev.fields.get("command", "")))
        elif isinstance(ev, AsyncAgiExec):
            waiting = [c for c in self.commands[channel] if c.result is None]
            if waiting:
                waiting[0].result = ev.result.raw.strip()

    def prompts(self, channel: str) -> list[str]:
        """Sound names played (STREAM FILE, GET DATA), in order."""
        out = []
        for c in self.commands[channel]:
            argv = [a.upper() for a in c.argv[:2]]
            if argv in (["STREAM", "FILE"], ["GET", "DATA"]):
                out.append(c.argv[2])
        return out

    def played(self, channel: str, prompt: str) -> list[AgiCommand]:
        return [c for c in self.commands[channel] if len(c.argv) > 2 and c.argv[2] == prompt
                and c.argv[0].upper() in ("STREAM", "GET")]

    def said(self, channel: str) -> list[str]:
        return [c.argv[2] for c in self.commands[channel]
                if [a.upper() for a in c.argv[:2]] == ["SAY", "DIGITS"]]

    def variables(self, channel: str) -> dict[str, str]:
        return {c.argv[2]: c.argv[3] for c in self.commands[channel]
                if [a.upper() for a in c.argv[:2]] == ["SET", "VARIABLE"] and len(c.argv) > 3}


@dataclass
class MenuRig:
    sim: PbxSim
    service: HotlineService
    config: HotlineConfig
    agi: AgiLog

    async def add_agent(self, ext: int, queue: str, talk_s: float = 2.0) -> str:
        from pbxsim import AgentSpec
        name, interface = f"agent{ext}", f"Local/{ext}@agents/n"
        self.sim.add_agent(AgentSpec(interface=interface, name=name, answer_delay_s=0.5,
                                     talk_time_s=talk_s))
        await self.service.link.action("QueueAdd", {"Queue": queue, "Interface": interface,
                                                    "Penalty": "0", "MemberName": name})
        return name

    async def settle(self) -> None:
        async with asyncio.timeout(30):
            while self.service.calls.sessions:
                await asyncio.sleep(0.05)
        await self.service.recorder.drain()

    def prompt(self, name: str, menu: str = "ko-KR") -> str:
        return self.config.ivr.menus[menu].sound_of(menu, name)


def menu_config(tmp_path: Path, **kw: object) -> HotlineConfig:
    return service_config(tmp_path, 0, **kw)  # type: ignore[arg-type]


@asynccontextmanager
async def menu_rig(tmp_path: Path, config: HotlineConfig, *, speed: float = 10.0,
                   engine: SpeechEngine | None = None, extra_dialplan: str = "",
                   record_dir: Path | None = None) -> AsyncIterator[MenuRig]:
    # The heartbeat guard compares pbxsim's clock, `speed` times faster than the service's
    # heartbeat timer: the dialplan is rendered for a beat that many times slower.
    scaled = config.model_copy(update={"ami": config.ami.model_copy(update={
        "heartbeat_interval_s": config.ami.heartbeat_interval_s * speed})})
    text = {k: v.decode() for k, v in build_text(scaled).items()}
    sim = PbxSim(SimConfig(host="127.0.0.1", port=0, speed=speed,
                           dialplan=text["extensions.conf"] + extra_dialplan,
                           queues=text["queues.conf"], auth_failure_delay_s=0.2,
                           record_dir=record_dir))
    await sim.start()
    cfg = config.model_copy(update={"ami": config.ami.model_copy(update={
        "port": sim.ami_port})})
    service = HotlineService(cfg, speech_engine=engine)
    log = AgiLog()
    watcher = AmiLink(cfg.ami, name="harness")
    watcher.add_listener(log.on_event, ["AGIExecStart", "AsyncAGIExec"])
    await service.start()
    watcher.start()
    try:
        await service.link.wait_up(timeout=10)
        await watcher.wait_up(timeout=10)
        # The generated entry sends calls straight to the queue until the service's first
        # heartbeat: wait for it, as a real deployment's first caller would not notice.
        async with asyncio.timeout(10):
            while HEARTBEAT not in sim.globals:
                await asyncio.sleep(0.05)
        yield MenuRig(sim, service, cfg, log)
    finally:
        await watcher.stop()
        await service.stop()
        await sim.stop()


async def open_case(r: MenuRig, call_id: str, number: str = "13900001111",
                    dnid: str = "120") -> str:
    """A case opened by a call (to the ko-KR menu's number by default): its number."""
    case = await r.service.store.open_call_case(CallStart(
        call_id=call_id, caller_number=number, dnid=dnid, locale="ko-KR"))
    return case.number


SEOUL = "120"          # the ko-KR menu's number


def caller(keys: list[tuple[str, float]], **kw: object) -> CitizenScript:
    """A citizen calling the Seoul 120 menu, pressing ``keys`` into its prompts."""
    return CitizenScript(context="hotline", exten=SEOUL, dnid=SEOUL, keys=keys,
                         **kw)  # type: ignore[arg-type]


async def case_of(r: MenuRig, call_id: str) -> CaseView:
    case = await r.service.store.get_by_call(r.config.service.node, call_id)
    assert case is not None
    return case
