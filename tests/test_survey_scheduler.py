"""The service places the 回访 survey of replied cases by itself: due cases are called through
pbxsim and the answered survey records the score; a citizen not reached is called again after
the retry time and, after the last attempt, the case is closed with the reason; a withheld
number closes it at once; nothing is called outside the calling hours."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cases import Action
from cases.errors import CaseStoreUnavailable
from cases.schemas import CallStart
from dialplan import build_text
from ivr.config import AmiNodeConfig, HotlineConfig
from ivr.menus.model import SurveyCallConfig
from ivr.survey_scheduler import SurveyScheduler
from pbxsim import CitizenScript, PbxSim, SimConfig
from tests.cases_fixtures import DEPARTMENTS
from tests.menu_harness import HEARTBEAT, MenuRig, menu_config, menu_rig

SEOUL = "120"
# The citizens' phones: each rings until the caller gives up (Asterisk then reports
# OriginateResponse Reason 3, no answer), unless a test's simulated citizen picks it up.
RINGS_OUT = "\n[citizens]\nexten => _X.,1,Wait(3600)\n"


def rig(tmp_path: Path, cfg: HotlineConfig):  # type: ignore[no-untyped-def]
    return menu_rig(tmp_path, cfg, extra_dialplan=RINGS_OUT)


def _config(tmp_path: Path, **survey: object) -> HotlineConfig:
    cfg = menu_config(tmp_path)
    return cfg.model_copy(update={"ivr": cfg.ivr.model_copy(update={
        "survey": cfg.ivr.survey.model_copy(update={
            "dial": "Local/{number}@citizens", "after_s": 600, "retry_s": 3600, "attempts": 2,
            "hours": ["mon-sun 00:00-24:00"], **survey})})})


async def _replied_case(r: MenuRig, call_id: str, caller: str | None) -> str:
    store = r.service.store
    await store.load_departments(DEPARTMENTS)
    case = await store.open_call_case(CallStart(call_id=call_id, caller_number=caller,
                                                dnid=SEOUL, locale="ko-KR"))
    for action, kw in ((Action.DISPATCH, {"department": "310101"}), (Action.START, {}),
                       (Action.REPLY, {"reason": "pipe repaired"})):
        await store.transition(case.number, action, actor="agent-1", **kw)
    return case.number


class _Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def _scheduler(r: MenuRig, clock: _Clock) -> SurveyScheduler:
    cfg = r.config
    return SurveyScheduler(r.service.store, r.service.surveys, cfg.ivr.survey,
                           cfg.ivr.timezone or cfg.service.timezone, now=clock)


async def test_a_due_case_is_called_and_the_score_recorded(tmp_path: Path) -> None:
    async with menu_rig(tmp_path, _config(tmp_path)) as r:
        number = await _replied_case(r, "handled-call", "13900002222")
        clock = _Clock()
        scheduler = _scheduler(r, clock)
        assert await scheduler.check() == []             # replied just now: not due yet
        answered = r.sim.expect_call("13900002222", "citizens",
                                     CitizenScript(keys=[("4", 0.3)]))
        clock.now += timedelta(seconds=601)
        assert await scheduler.check() == [number]
        handle = await asyncio.wait_for(answered, 10)
        await asyncio.wait_for(handle.done, 30)
        await r.settle()
        case = await r.service.store.get(number)
        assert case is not None and str(case.status) == "revisited" and case.satisfaction == 4
        clock.now += timedelta(days=1)
        assert await scheduler.check() == []             # surveyed: never called again


async def test_a_citizen_not_reached_is_called_again_then_the_case_closed(
        tmp_path: Path) -> None:
    async with rig(tmp_path, _config(tmp_path)) as r:
        # Nobody answers the phone: it rings out, the case stays replied.
        number = await _replied_case(r, "unreached-call", "13900003333")
        clock = _Clock()
        scheduler = _scheduler(r, clock)
        clock.now += timedelta(seconds=601)
        assert await scheduler.check() == [number]
        assert await scheduler.check() == []             # the retry time has not passed
        clock.now += timedelta(seconds=3601)
        assert await scheduler.check() == [number]       # second and last attempt
        case = await r.service.store.get(number)
        assert case is not None and str(case.status) == "replied"
        clock.now += timedelta(seconds=3601)
        assert await scheduler.check() == []
        case = await r.service.store.get(number)
        assert case is not None and str(case.status) == "closed"
        closing = [e for e in await r.service.store.timeline(number) if "no score" in str(
            e.detail)]
        assert closing and closing[-1].actor == "ivr-survey"


class _CountingStore:
    """The real case store, counting the scheduler's claims (each one is a locked write)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.claims: list[str] = []

    async def claim_survey_call(self, number: str, **kw: Any) -> Any:
        self.claims.append(number)
        return await self._store.claim_survey_call(number, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


async def test_a_case_waiting_out_its_retry_costs_no_claim_until_then(tmp_path: Path) -> None:
    async with rig(tmp_path, _config(tmp_path)) as r:
        number = await _replied_case(r, "resting-call", "13900004444")   # it rings out
        clock = _Clock()
        store = _CountingStore(r.service.store)
        cfg = r.config
        scheduler = SurveyScheduler(store, r.service.surveys, cfg.ivr.survey,
                                    cfg.ivr.timezone or cfg.service.timezone, now=clock)
        clock.now += timedelta(seconds=601)
        assert await scheduler.check() == [number]
        assert await scheduler.check() == []     # the store says: not before the retry time
        assert store.claims == [number, number]
        for _ in range(5):                       # ... so the next looks do not ask again
            clock.now += timedelta(seconds=600)
            assert await scheduler.check() == []
        assert store.claims == [number, number]
        clock.now += timedelta(seconds=601)      # 3601 s after the first call
        assert await scheduler.check() == [number]
        assert store.claims == [number] * 3
        # A second scheduler (another service on the same store) has no such memory, and the
        # claim still refuses it the call the first one just made.
        other = _scheduler(r, clock)
        assert await other.check() == []


async def test_a_case_replied_again_is_surveyed_afresh(tmp_path: Path) -> None:
    async with rig(tmp_path, _config(tmp_path, retry_s=7200)) as r:
        store = r.service.store
        number = await _replied_case(r, "again-call", "13900006666")
        clock = _Clock()
        scheduler = _scheduler(r, clock)
        clock.now += timedelta(seconds=601)
        assert await scheduler.check() == [number]       # not reached this time
        # Surveyed by hand as unsatisfied, reopened, handled and replied to again, later on
        # (the store's clock follows the test's).
        store._clock = lambda: clock.now + timedelta(hours=1)
        await store.transition(number, Action.REVISIT, actor="agent-1", satisfaction=1)
        await store.transition(number, Action.REPLY, actor="agent-1", reason="fixed again")
        clock.now += timedelta(hours=1, seconds=601)
        # The first call was 1 h 10 min ago, under retry_s: only a fresh count allows a call.
        assert await scheduler.check() == [number]       # a new reply: a new first call


@pytest.mark.parametrize("dial", [
    "Broken{number}",                      # refused at once (no technology/resource)
    "Local/{number}@no_such_trunk",        # queued, then OriginateResponse Failure, Reason 0
])
async def test_calls_that_cannot_be_made_cost_no_attempt(tmp_path: Path, dial: str) -> None:
    # A wrong dial string, or a trunk that is down: every call fails before any phone rings.
    # Nobody may be closed as "not reached" for it.
    async with rig(tmp_path, _config(tmp_path, dial=dial, attempts=1)) as r:
        cases = [await _replied_case(r, f"trunk-{i}", f"1390000777{i}") for i in range(2)]
        clock = _Clock()
        scheduler = _scheduler(r, clock)
        for _ in range(3):                               # hours of looks, all failing
            clock.now += timedelta(seconds=3601)
            assert await scheduler.check() == []
        for number in cases:
            case = await r.service.store.get(number)
            assert case is not None and str(case.status) == "replied"   # never closed
            kinds = [e.kind for e in await r.service.store.timeline(number)]
            assert kinds.count("survey_call") == kinds.count("survey_call_failed") == 3


async def test_a_call_whose_outcome_was_lost_is_not_placed_again(tmp_path: Path) -> None:
    """The AMI link drops right after the Originate went out: the citizen's phone may ring,
    so the attempt counts and the next look does not ring it again."""
    async with rig(tmp_path, _config(tmp_path)) as r:
        number = await _replied_case(r, "dropped-call", "13900005556")
        link = r.service.link
        send = link._send

        async def drop_after_originate(action: str, fields: Any, **kw: Any) -> Any:
            sent = asyncio.create_task(send(action, fields, **kw))
            if action == "Originate":
                await asyncio.sleep(0)          # written to the socket...
                link.drop()                     # ...and the TCP link goes
            return await sent

        link._send = drop_after_originate  # type: ignore[method-assign]
        clock = _Clock()
        scheduler = _scheduler(r, clock)
        clock.now += timedelta(seconds=601)
        assert await scheduler.check() == [number]
        link._send = send  # type: ignore[method-assign]
        await link.wait_up(timeout=10)
        clock.now += timedelta(seconds=60)              # the next look
        assert await scheduler.check() == []
        kinds = [e.kind for e in await r.service.store.timeline(number)]
        assert kinds.count("survey_call") == 1 and "survey_call_failed" not in kinds


async def test_a_citizen_who_asks_for_a_person_is_not_surveyed_again(tmp_path: Path) -> None:
    async with rig(tmp_path, _config(tmp_path)) as r:
        agent = await r.add_agent(1001, "hotline_general")
        number = await _replied_case(r, "to-agent-call", "13900006667")
        clock = _Clock()
        scheduler = _scheduler(r, clock)
        answered = r.sim.expect_call("13900006667", "citizens",
                                     CitizenScript(keys=[("0", 0.3)]))
        clock.now += timedelta(seconds=601)
        assert await scheduler.check() == [number]
        handle = await asyncio.wait_for(answered, 10)
        outcome = await asyncio.wait_for(handle.done, 60)
        assert outcome.answered_by == agent
        await r.settle()
        for _ in range(3):                               # retries, then "exhausted" looks
            clock.now += timedelta(seconds=3601)
            assert await scheduler.check() == []
        case = await r.service.store.get(number)
        assert case is not None and str(case.status) == "replied"   # the agent settles it
        kinds = [e.kind for e in await r.service.store.timeline(number)]
        assert kinds.count("survey_call") == 1 and "survey_to_agent" in kinds


async def test_two_schedulers_on_one_store_call_once(tmp_path: Path) -> None:
    async with rig(tmp_path, _config(tmp_path)) as r:
        number = await _replied_case(r, "shared-call", "13900009999")
        clock = _Clock()
        clock.now += timedelta(seconds=601)
        a, b = _scheduler(r, clock), _scheduler(r, clock)
        placed = await asyncio.gather(a.check(), b.check())
        assert sorted(placed, key=len) == [[], [number]]


async def test_a_withheld_number_closes_the_case_with_the_reason(tmp_path: Path) -> None:
    async with menu_rig(tmp_path, _config(tmp_path, after_s=0)) as r:
        number = await _replied_case(r, "withheld-call", None)
        assert await _scheduler(r, _Clock()).check() == []
        case = await r.service.store.get(number)
        assert case is not None and str(case.status) == "closed"
        assert any("withheld" in str(e.detail) for e in await r.service.store.timeline(number))


async def test_nothing_is_called_outside_the_calling_hours(tmp_path: Path) -> None:
    # A one-minute window two hours from now, in UTC.
    start = datetime.now(UTC) + timedelta(hours=2)
    if start.hour == 23 and start.minute == 59:
        start += timedelta(minutes=2)                     # a range cannot wrap past midnight
    window = f"mon-sun {start:%H:%M}-{start + timedelta(minutes=1):%H:%M}"
    cfg = _config(tmp_path, after_s=0, hours=[window])
    cfg = cfg.model_copy(update={"ivr": cfg.ivr.model_copy(update={"timezone": "UTC"})})
    async with rig(tmp_path, cfg) as r:
        number = await _replied_case(r, "night-call", "13900004444")
        clock = _Clock()                                  # due now, but outside the hours
        assert await _scheduler(r, clock).check() == []
        assert await r.service.store.audit_log(case_number=number, actor="ivr-survey") == []
        clock.now = start.replace(second=30)
        assert await _scheduler(r, clock).check() == [number]


async def test_the_service_runs_the_scheduler_when_auto_is_on(tmp_path: Path) -> None:
    async with menu_rig(tmp_path, _config(tmp_path, auto=True, after_s=0, check_s=0.2)) as r:
        assert r.service.survey_scheduler is not None
        number = await _replied_case(r, "auto-call", "13900005555")
        answered = r.sim.expect_call("13900005555", "citizens",
                                     CitizenScript(keys=[("5", 0.3)]))
        handle = await asyncio.wait_for(answered, 10)
        await asyncio.wait_for(handle.done, 30)
        await r.settle()
        case = await r.service.store.get(number)
        assert case is not None and str(case.status) == "revisited" and case.satisfaction == 5


async def test_no_survey_calls_on_a_holiday(tmp_path: Path) -> None:
    today = datetime.now(UTC).date()
    cfg = _config(tmp_path, after_s=0, holidays=[today - timedelta(days=1), today,
                                                 today + timedelta(days=1)])
    cfg = cfg.model_copy(update={"ivr": cfg.ivr.model_copy(update={"timezone": "UTC"})})
    async with menu_rig(tmp_path, cfg) as r:
        await _replied_case(r, "holiday-call", "13900001234")
        assert await _scheduler(r, _Clock()).check() == []


def test_a_retry_shorter_than_the_ringing_is_refused() -> None:
    with pytest.raises(ValueError, match="retry_s"):
        SurveyCallConfig(retry_s=60, ring_timeout_s=120)


async def test_a_score_outlives_a_database_blip(tmp_path: Path) -> None:
    """The case store fails as the unsatisfied score is written: the score waits in the
    recorder (journaled) and lands when the store answers again; the complaint is reopened
    rather than lost."""
    async with rig(tmp_path, _config(tmp_path)) as r:
        number = await _replied_case(r, "blip-call", "13900008889")
        writer = r.service.recorder._writer_store
        assert writer is not None
        transition = writer.transition         # type: ignore[attr-defined]
        failures: list[str] = []

        async def blip(*a: Any, **kw: Any) -> Any:
            if not failures:
                failures.append("down")
                raise CaseStoreUnavailable("database unreachable (test)")
            return await transition(*a, **kw)

        writer.transition = blip               # type: ignore[attr-defined]
        answered = r.sim.expect_call("13900008889", "citizens",
                                     CitizenScript(keys=[("1", 0.3)]))
        assert await r.service.surveys.call(number)
        handle = await asyncio.wait_for(answered, 10)
        await asyncio.wait_for(handle.done, 30)
        await r.settle()
        assert failures == ["down"]
        case = await r.service.store.get(number)
        assert case is not None and case.satisfaction == 1
        assert str(case.status) not in ("replied", "closed")   # reopened by the low score


async def test_surveys_go_out_through_another_asterisk_when_the_first_is_down(
        tmp_path: Path) -> None:
    """Two Asterisks: with the first one down, the due survey is dialled through the second,
    whose node runs the answered call and records the score."""
    base = _config(tmp_path)
    speed = 10.0
    scaled = base.model_copy(update={"ami": base.ami.model_copy(update={
        "heartbeat_interval_s": base.ami.heartbeat_interval_s * speed})})
    dialplan = build_text(scaled)["extensions.conf"].decode() + RINGS_OUT
    second = PbxSim(SimConfig(host="127.0.0.1", port=0, speed=speed, dialplan=dialplan,
                              queues=build_text(scaled)["queues.conf"].decode()))
    await second.start()
    try:
        cfg = base.model_copy(update={"ami": base.ami.model_copy(update={"nodes": [
            AmiNodeConfig(name="second", host="127.0.0.1", port=second.ami_port)]})})
        async with rig(tmp_path, cfg) as r:
            number = await _replied_case(r, "two-node-call", "13900007777")
            first_link, second_link = (n.link for n in r.service.nodes)
            await second_link.wait_up(timeout=10)
            async with asyncio.timeout(10):             # node 2's heartbeat reached it
                while HEARTBEAT not in second.globals:
                    await asyncio.sleep(0.05)
            await r.sim.stop()                           # the first Asterisk goes away
            async with asyncio.timeout(10):
                while first_link.is_up:
                    await asyncio.sleep(0.05)
            answered = second.expect_call("13900007777", "citizens",
                                          CitizenScript(keys=[("5", 0.3)]))
            clock = _Clock()
            clock.now += timedelta(seconds=601)
            assert r.service.surveys.ready
            assert await _scheduler(r, clock).check() == [number]
            handle = await asyncio.wait_for(answered, 10)
            await asyncio.wait_for(handle.done, 30)
            await r.settle()
            case = await r.service.store.get(number)
            assert case is not None and str(case.status) == "revisited"
            assert case.satisfaction == 5
    finally:
        await second.stop()



async def test_a_call_that_cannot_be_prepared_does_not_stop_the_others(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Preparing one due case's call fails (here: the dialer raises for it). The look goes
    on: the other case's citizen is still called, and the failed case is charged no attempt
    and waits the retry time."""
    async with rig(tmp_path, _config(tmp_path, after_s=0)) as r:
        broken = await _replied_case(r, "broken-call", "13900005555")
        fine = await _replied_case(r, "fine-call", "13900006666")
        dialer = r.service.surveys
        real = dialer.prepare

        async def prepare(number: str) -> Any:
            if number == broken:
                raise RuntimeError("cannot prepare this one (test)")
            return await real(number)
        monkeypatch.setattr(dialer, "prepare", prepare)
        clock = _Clock()
        scheduler = _scheduler(r, clock)
        assert await scheduler.check() == [fine]
        assert await scheduler.check() == []          # the broken one rests for retry_s
        monkeypatch.setattr(dialer, "prepare", real)
        clock.now += timedelta(seconds=3601)
        assert broken in await scheduler.check()      # (and fine's second attempt)
        clock.now += timedelta(seconds=3601)
        # No attempt was charged for the failure: broken still has its second call (attempts
        # = 2), while fine, called twice, is closed.
        assert await scheduler.check() == [broken]
