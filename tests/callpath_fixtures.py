"""A running pbxsim plus a running service wired to it, for end-to-end call tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from ivr.config import HotlineConfig, load_config
from ivr.service import HotlineService
from pbxsim import AgentSpec, PbxSim, SimConfig
from speech.engine import SpeechEngine

QUEUES = """
[general]
persistentmembers = no
[hotline_general]
strategy = leastrecent
timeout = 15
retry = 1
wrapuptime = 1
joinempty = yes
ringinuse = no
[water]
strategy = leastrecent
timeout = 15
retry = 1
wrapuptime = 1
joinempty = yes
ringinuse = no
[energy]
strategy = leastrecent
timeout = 15
retry = 1
joinempty = yes
ringinuse = no
[housing]
strategy = leastrecent
timeout = 15
retry = 1
joinempty = yes
ringinuse = no
[transport]
strategy = leastrecent
timeout = 15
retry = 1
joinempty = yes
ringinuse = no
[social_security]
strategy = leastrecent
timeout = 15
retry = 1
joinempty = yes
ringinuse = no
"""


def service_config(tmp_path: Path, port: int, *, secret: str = "s3cret",
                   db_url: str | None = None, speech: bool = False, model_path: str = "",
                   max_utterance_s: float | None = None, transcription: str | None = None,
                   base: HotlineConfig | None = None, **ivr: object) -> HotlineConfig:
    """``base``: a loaded configuration to start from (default: the built-in defaults)."""
    cfg = base or load_config(env={})
    heard: dict[str, object] = {"enabled": speech, "model_path": model_path}
    if max_utterance_s is not None:
        heard["max_utterance_s"] = max_utterance_s
    if transcription is not None:
        heard["transcription"] = transcription
    return cfg.model_copy(update={
        "speech": cfg.speech.model_copy(update=heard),
        "audiosocket": cfg.audiosocket.model_copy(update={"listen_port": 0}),
        "ami": cfg.ami.model_copy(update={"port": port, "secret": secret,
                                          "ping_interval_s": 1.0, "action_timeout_s": 2.0,
                                          "reconnect_min_s": 0.05, "reconnect_max_s": 0.5}),
        "database": cfg.database.model_copy(update={
            "url": db_url or f"sqlite+aiosqlite:///{tmp_path / 'cases.db'}",
            "journal": str(tmp_path / "cases.journal")}),
        "ivr": cfg.ivr.model_copy(update={"input_timeout_ms": 3000, **ivr}),
    })


@dataclass
class Rig:
    sim: PbxSim
    service: HotlineService
    config: HotlineConfig

    async def add_agent(self, ext: int, queue: str, penalty: int = 0, talk_s: float = 5.0,
                        answer_s: float = 0.5) -> str:
        name = f"agent{ext}"
        interface = f"Local/{ext}@agents/n"
        self.sim.add_agent(AgentSpec(interface=interface, name=name, answer_delay_s=answer_s,
                                     talk_time_s=talk_s))
        await self.service.link.action("QueueAdd", {"Queue": queue, "Interface": interface,
                                                    "Penalty": str(penalty),
                                                    "MemberName": name})
        return name

    async def settle(self) -> None:
        """Wait for every session to end and every case write to land."""
        async with asyncio.timeout(20):
            while self.service.calls.sessions:
                await asyncio.sleep(0.05)
        await self.service.recorder.drain()


@asynccontextmanager
async def rig(tmp_path: Path, *, speed: float = 10.0, engine: SpeechEngine | None = None,
              sim_kw: dict[str, object] | None = None, **cfg_kw: object) -> AsyncIterator[Rig]:
    sim = PbxSim(SimConfig(host="127.0.0.1", port=0, speed=speed, queues=QUEUES,
                           auth_failure_delay_s=0.2, **(sim_kw or {})))  # type: ignore[arg-type]
    await sim.start()
    cfg = service_config(tmp_path, sim.ami_port, **cfg_kw)  # type: ignore[arg-type]
    service = HotlineService(cfg, speech_engine=engine)
    await service.start()
    try:
        await service.link.wait_up(timeout=10)
        yield Rig(sim, service, cfg)
    finally:
        await service.stop()
        await sim.stop()
