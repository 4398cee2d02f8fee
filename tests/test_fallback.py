"""Fail-open: with the service's AMI link gone, a new call reaches the default queue in
pbxsim without async AGI; with the heartbeat fresh, the same generated dialplan hands the
call to the service.

pbxsim runs the generated extensions.conf and queues.conf, not hand-written ones, on an
accelerated clock; the service beats every 0.2 s of real time (0.8 s simulated) against a
generated staleness of 3 s.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from dialplan import build_text
from dialplan.common import default_queue
from dialplan.extensions import CONTEXT, FALLBACK_VARIABLE, stale_after_s
from ivr.config import HotlineConfig, load_config
from ivr.service import HotlineService
from pbxsim import AgentSpec, CitizenScript, PbxSim, SimConfig
from tests.test_pbxsim_support import AmiClient, Msg, get

SPEED = 4.0
HEARTBEAT = "HOTLINE_HEARTBEAT"


def hotline_config(tmp_path: Path, ami_port: int = 5038, **ivr: object) -> HotlineConfig:
    cfg = load_config(env={})
    return cfg.model_copy(update={
        "speech": cfg.speech.model_copy(update={"enabled": False}),
        "audiosocket": cfg.audiosocket.model_copy(update={"listen_port": 0}),
        "ami": cfg.ami.model_copy(update={
            "port": ami_port, "secret": "s3cret", "heartbeat_interval_s": 0.2,
            "action_timeout_s": 2.0, "ping_interval_s": 1.0, "reconnect_min_s": 0.05,
            "reconnect_max_s": 0.5}),
        "database": cfg.database.model_copy(update={
            "url": f"sqlite+aiosqlite:///{tmp_path / 'cases.db'}"}),
        "ivr": cfg.ivr.model_copy(update={"input_timeout_ms": 3000, **ivr}),
    })


@dataclass
class Rig:
    sim: PbxSim
    service: HotlineService
    watcher: AmiClient
    config: HotlineConfig

    async def call(self) -> str:
        """A citizen dials the hotline and presses 1 when asked; its IVR channel."""
        call = await self.sim.place_call(CitizenScript(
            context=CONTEXT, exten="12345", dnid="12345", keys=[("1", 0.5)],
            patience_s=30.0))
        return call.ivr_channel

    def guard_of(self, channel: str) -> str | None:
        return next((get(m, "AppData") for m in self.watcher.events("Newexten")
                     if get(m, "Channel") == channel and get(m, "Application") == "GotoIf"),
                    None)

    def agi_started(self, channel: str) -> bool:
        return any(get(m, "Channel") == channel for m in self.watcher.events("AsyncAGIStart"))

    async def joined(self, channel: str) -> Msg:
        return await self.watcher.wait_event("QueueCallerJoin", timeout=15, Channel=channel)

    async def handed_to_the_default_queue(self, channel: str, fallback: str) -> Msg:
        """The service took the call, then the dialplan's fallback (``fallback``: how async
        AGI ended) queued it to the default group; its QueueCallerJoin."""
        await self.watcher.wait_event("AsyncAGIStart", timeout=10, Channel=channel)
        joined = await self.joined(channel)
        assert get(joined, "Queue") == default_queue(self.config)
        assert self.sim.channel_variable(channel, FALLBACK_VARIABLE) == fallback
        return joined

    async def settle(self, timeout_s: float = 10.0) -> None:
        """Every session ended and every case write landed."""
        async with asyncio.timeout(timeout_s):
            while self.service.calls.sessions:
                await asyncio.sleep(0.05)
        await self.service.recorder.drain()

    async def wait_stale(self) -> None:
        stale = stale_after_s(self.config.ami)
        async with asyncio.timeout(10):
            # ${EPOCH} is whole seconds: compare as the guard does.
            while int(self.sim.clock.now()) - int(self.sim.globals.get(HEARTBEAT, "0")) <= stale:
                await asyncio.sleep(0.05)


@asynccontextmanager
async def rig(tmp_path: Path, queue_timeout_s: int | None = None,
              configure: Callable[[HotlineConfig], HotlineConfig] = lambda c: c,
              **sim_kw: object) -> AsyncIterator[Rig]:
    ivr = {} if queue_timeout_s is None else {"queue_timeout_s": queue_timeout_s}
    # The dialplan and the queues do not depend on the AMI port pbxsim is about to get.
    files = build_text(configure(hotline_config(tmp_path, **ivr)))
    sim = PbxSim(SimConfig(port=0, speed=SPEED, dialplan=files["extensions.conf"].decode(),
                           queues=files["queues.conf"].decode(), **sim_kw))  # type: ignore[arg-type]
    await sim.start()
    config = configure(hotline_config(tmp_path, sim.ami_port, **ivr))
    again = build_text(config)
    assert [again[f] == files[f] for f in ("extensions.conf", "queues.conf")] == [True, True]
    service = HotlineService(config)
    await service.start()
    watcher = await AmiClient.connect(sim.ami_port, login=True)
    try:
        await service.link.wait_up(timeout=10)
        async with asyncio.timeout(10):
            while service.heartbeat.beats < 2:
                await asyncio.sleep(0.05)
        yield Rig(sim, service, watcher, config)
    finally:
        await watcher.close()
        await service.stop()
        await sim.stop()


def test_generated_staleness_is_short_but_above_the_beat() -> None:
    cfg = hotline_config(Path("/nonexistent"))
    assert stale_after_s(cfg.ami) == 3                      # ceil(0.2 + 2.0)
    assert cfg.ami.heartbeat_interval_s * SPEED < 3 / 2     # fresh with room for a late beat


@pytest.mark.parametrize("outage", ["ami_link_stopped", "service_stopped"])
async def test_fresh_heartbeat_hands_calls_to_the_service_stale_goes_to_the_queue(
        tmp_path: Path, outage: str) -> None:
    async with rig(tmp_path) as r:
        default = default_queue(r.config)

        # Fresh: the generated guard lets the call through to async AGI and the service.
        channel = await r.call()
        await r.watcher.wait_event("AsyncAGIStart", timeout=10, Channel=channel)
        joined = await r.joined(channel)       # the service greeted, heard 1 and queued
        assert r.guard_of(channel) == "0?fallback"
        assert get(joined, "Queue") in {g.queue for g in r.config.routing.groups}
        assert r.service.calls.started == 1
        await r.watcher.action("Hangup", Channel=channel)

        # Outage: no more heartbeats; once stale, a new call skips the service.
        if outage == "ami_link_stopped":
            await r.service.link.stop()
        else:
            await r.service.stop()
        await r.wait_stale()
        channel = await r.call()
        joined = await r.joined(channel)
        assert get(joined, "Queue") == default
        assert r.guard_of(channel) == "1?fallback"
        assert not r.agi_started(channel)
        assert r.sim.channel_variable(channel, FALLBACK_VARIABLE) == "stale"
        assert r.service.calls.started == 1
        await r.watcher.action("Hangup", Channel=channel)


async def test_a_bug_in_the_call_script_releases_the_caller_to_the_default_queue(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever breaks inside a session, the citizen is not left in silence: the session ends
    async AGI and the generated dialplan queues the caller to the default group."""
    from ivr.session import CallSession

    async def broken(self: CallSession) -> object:
        raise RuntimeError("a bug in the menu walk")

    # Fault injection: a bug of ours, not a stand-in for a real part.
    monkeypatch.setattr(CallSession, "_walk_menu", broken)
    async with rig(tmp_path) as r:
        channel = await r.call()
        await r.handed_to_the_default_queue(channel, "agi-SUCCESS")
        await r.settle()
        assert await r.service.store.count() == 1     # the call still has its case
        await r.watcher.action("Hangup", Channel=channel)


async def test_a_prompt_missing_on_asterisk_queues_the_caller_and_owes_no_callback(
        tmp_path: Path) -> None:
    """Asterisk without the generated sound files: the first prompt answers "result=-1" on a
    live channel and async AGI ends. That is no hangup: the dialplan queues the caller to the
    default group, and the case says the call failed on our side (not abandoned, which would
    book a callback for a citizen who is being served)."""
    async with rig(tmp_path, missing_sounds_fail=True) as r:
        channel = await r.call()
        joined = await r.handed_to_the_default_queue(channel, "agi-FAILURE")
        await r.settle()
        uniqueid = get(joined, "Uniqueid")
        case = await r.service.store.get_by_call(r.config.service.node, uniqueid)
        assert case is not None and str(case.outcome) == "failed"
        kinds = [e.kind for e in await r.service.store.timeline(case.number)]
        assert "callback_task" not in kinds
        await r.watcher.action("Hangup", Channel=channel)


async def _default_queue_joins(r: Rig, watcher: AmiClient, channel: str) -> list[str]:
    return [get(m, "Queue") for m in watcher.events("QueueCallerJoin")
            if get(m, "Channel") == channel]


async def test_a_caller_waiting_in_queue_across_a_restart_is_not_stranded(
        tmp_path: Path) -> None:
    """A deploy restarts the service while a caller waits in Queue() (run over async AGI).
    Asterisk lists the channel under Queue, not AGI; the new service must still take the
    call up and, when the queue gives up, try the default group as the first would have."""
    async with rig(tmp_path, queue_timeout_s=8) as r:
        channel = await r.call()
        joined = await r.joined(channel)
        first_queue = get(joined, "Queue")
        assert first_queue != default_queue(r.config)
        await r.service.stop()
        second = HotlineService(r.config)
        await second.start()
        try:
            await second.link.wait_up(timeout=10)
            async with asyncio.timeout(30):     # the queue's 8 s, then the default queue
                while len(joins := await _default_queue_joins(r, r.watcher, channel)) < 2:
                    await asyncio.sleep(0.05)
            assert joins == [first_queue, default_queue(r.config)]
            assert second.calls.resumed == 1
        finally:
            await r.watcher.action("Hangup", Channel=channel)
            await second.stop()


async def test_a_queue_that_ends_during_an_ami_outage_is_settled_after_it(
        tmp_path: Path) -> None:
    """The AMI link is down when Queue() gives up (its result is lost with the link). After
    the reconnect the session learns how the queue ended (QUEUESTATUS) and carries on: the
    caller is offered the default group, not left parked, and not queued twice where it was."""
    async with rig(tmp_path, queue_timeout_s=8) as r:
        channel = await r.call()
        joined = await r.joined(channel)
        first_queue = get(joined, "Queue")
        assert first_queue != default_queue(r.config)
        r.sim.ami_outage(True)
        async with asyncio.timeout(15):
            while r.sim.channel_variable(channel, "QUEUESTATUS") != "TIMEOUT":
                await asyncio.sleep(0.05)
        r.sim.ami_outage(False)
        watcher = await AmiClient.connect(r.sim.ami_port, login=True)
        try:
            joined_again = await watcher.wait_event("QueueCallerJoin", timeout=20,
                                                    Channel=channel)
            assert get(joined_again, "Queue") == default_queue(r.config)
            assert len(r.service.calls.sessions) == 1
        finally:
            await watcher.action("Hangup", Channel=channel)
            await watcher.close()


async def test_the_menu_follows_the_dialled_number_on_a_channel_without_dnid(
        tmp_path: Path) -> None:
    """A trunk's inbound context that does Goto(hotline,${EXTEN},1), or a Local channel,
    gives no DNID (agi_dnid: unknown in the reference transcripts): the hotline number is the
    entry's extension, and its menu (here the Mandarin one) must greet the caller."""
    def mandarin_on_12366(c: HotlineConfig) -> HotlineConfig:
        menus = dict(c.ivr.menus)
        menus["zh-CN"] = menus["zh-CN"].model_copy(update={"numbers": ["12366"]})
        return c.model_copy(update={"ivr": c.ivr.model_copy(update={"menus": menus})})

    async with rig(tmp_path, configure=mandarin_on_12366) as r:
        assert r.config.ivr.menu_for("") != "zh-CN"
        call = await r.sim.place_call(CitizenScript(context=CONTEXT, exten="12366", dnid="",
                                                    keys=[("1", 0.5)], patience_s=30.0))
        channel = call.ivr_channel
        await r.joined(channel)
        session = next(iter(r.service.calls.sessions.values()))
        assert session.state.menu == "zh-CN"
        await r.watcher.action("Hangup", Channel=channel)


async def test_a_caller_who_hangs_up_during_an_ami_outage_is_owed_a_callback(
        tmp_path: Path) -> None:
    """The caller gives up in the queue while the AMI link is down: the Hangup event is lost
    with the link, and after the reconnect the channel is simply gone. That is the caller
    hanging up (abandoned, a callback owed), not a failure of ours."""
    async with rig(tmp_path) as r:
        call = await r.sim.place_call(CitizenScript(
            context=CONTEXT, exten="12345", dnid="12345", keys=[("1", 0.5)], patience_s=6.0))
        channel = call.ivr_channel
        joined = await r.joined(channel)
        r.sim.ami_outage(True)
        await asyncio.wait_for(call.done, 20)          # the citizen hangs up meanwhile
        r.sim.ami_outage(False)
        await r.settle(20)
        case = await r.service.store.get_by_call(r.config.service.node, get(joined, "Uniqueid"))
        assert case is not None and str(case.outcome) == "abandoned"
        kinds = [e.kind for e in await r.service.store.timeline(case.number)]
        assert "callback_task" in kinds



def _watchdog_after(seconds: int) -> Callable[[HotlineConfig], HotlineConfig]:
    def configure(c: HotlineConfig) -> HotlineConfig:
        return c.model_copy(update={"ivr": c.ivr.model_copy(update={"watchdog_s": seconds})})
    return configure


async def test_a_caller_in_the_ivr_is_queued_when_the_service_is_gone_for_good(
        tmp_path: Path) -> None:
    """The service dies and does not come back while a caller is in the IVR (parked in async
    AGI). The heartbeat guard only protects new calls; the dialplan's watchdog, no longer
    pushed back, sends this one to the default queue."""
    async with rig(tmp_path, configure=_watchdog_after(20)) as r:
        # The caller never presses anything: the IVR keeps asking.
        call = await r.sim.place_call(CitizenScript(context=CONTEXT, exten="12345",
                                                    dnid="12345", patience_s=60.0))
        channel = call.ivr_channel
        await r.watcher.wait_event("AsyncAGIStart", timeout=10, Channel=channel)
        await r.service.stop()                 # for good
        joined = await r.watcher.wait_event("QueueCallerJoin", timeout=15, Channel=channel)
        assert get(joined, "Queue") == default_queue(r.config)
        assert r.sim.channel_variable(channel, FALLBACK_VARIABLE) == "watchdog"
        await r.watcher.action("Hangup", Channel=channel)


async def test_the_watchdog_never_cuts_a_conversation(tmp_path: Path) -> None:
    """A call handed to a queue talks for far longer than the watchdog: the service clears
    it before Queue(), so Asterisk does not end the conversation."""
    async with rig(tmp_path, configure=_watchdog_after(20)) as r:
        await r.watcher.action("QueueAdd", Queue="water", Interface="Local/1001@agents/n",
                               MemberName="agent1001")
        r.sim.add_agent(AgentSpec(interface="Local/1001@agents/n", name="agent1001",
                                  answer_delay_s=0.5, talk_time_s=60.0))
        call = await r.sim.place_call(CitizenScript(context=CONTEXT, exten="12345",
                                                    dnid="12345", keys=[("1", 0.5)],
                                                    patience_s=60.0))
        outcome = await asyncio.wait_for(call.done, 60)
        assert outcome.answered_by == "agent1001" and outcome.talk_s >= 59
        # Never sent on to the watchdog's queue (the T extension) meanwhile.
        assert [get(m, "Queue") for m in r.watcher.events("QueueCallerJoin")
                if get(m, "Channel") == call.ivr_channel] == ["water"]
