"""The speech-first IVR's menus through pbxsim: every path a caller can take, with the prompts
played, the digits said, the variables set and the case the call leaves behind.

pbxsim runs the generated extensions.conf and queues.conf (see ``tests.menu_harness``); the
callers are scripted ``CitizenScript``s; the menus are the shipped ones (Seoul 120, ``ko-KR``,
the default menu; 12345, ``zh-CN``)."""

# ruff: noqa: F811  (pytest fixtures are imported by name)

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import wave
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ivr.config import HotlineConfig
from speech.engine import SpeechEngine
from tests.menu_harness import caller, case_of, menu_config, menu_rig, open_case
from tests.speech_fixtures import engine, wav_of  # noqa: F401 (fixture)


async def test_barge_in_and_a_wrong_key_retried(tmp_path: Path) -> None:
    async with menu_rig(tmp_path, menu_config(tmp_path)) as r:
        agent = await r.add_agent(1001, "water")
        # 9 means nothing; 1 is pressed 0.2 s into the 1 s "wrong key" prompt.
        call = await r.sim.place_call(caller([("9", 0.2), ("1", 0.2)]))
        outcome = await asyncio.wait_for(call.done, 30)
        await r.settle()
        ch = call.ivr_channel
        assert outcome.answered_by == agent and outcome.queue == "water"
        # The key stopped the retry prompt, and the greeting after it never played.
        assert r.agi.prompts(ch) == [r.prompt("greeting"), r.prompt("invalid")]
        (retry,) = r.agi.played(ch, r.prompt("invalid"))
        assert retry.result is not None and retry.result.startswith(f"200 result={ord('1')} ")
        endpos = int(retry.result.rpartition("endpos=")[2])
        assert 0 < endpos < 8000            # stopped before the prompt's end (1 s, 8 kHz)
        case = await case_of(r, call.ivr_uniqueid)
        assert list(case.ivr_path[:4]) == ["greeting:key:9", "greeting:key:1", "menu:topic",
                                     "route:water"]
        assert r.agi.variables(ch)["HOTLINE_CASE"] == case.number
        assert r.agi.variables(ch)["HOTLINE_TOPIC"] == "water"


async def test_no_input_is_asked_again_then_a_person(tmp_path: Path) -> None:
    async with menu_rig(tmp_path, menu_config(tmp_path)) as r:
        agent = await r.add_agent(1002, "hotline_general")
        call = await r.sim.place_call(caller([]))
        outcome = await asyncio.wait_for(call.done, 40)
        await r.settle()
        assert outcome.answered_by == agent and outcome.queue == "hotline_general"
        assert r.agi.prompts(call.ivr_channel) == [
            r.prompt("greeting"), r.prompt("no_input"), r.prompt("greeting")]
        case = await case_of(r, call.ivr_uniqueid)
        assert list(case.ivr_path[:3]) == ["greeting:no-input", "greeting:no-input", "menu:human"]
        assert case.topic is None and str(case.outcome) == "answered"


async def test_zero_reaches_a_person_from_a_sub_menu(tmp_path: Path) -> None:
    async with menu_rig(tmp_path, menu_config(tmp_path)) as r:
        agent = await r.add_agent(1003, "hotline_general")
        call = await r.sim.place_call(caller([("7", 0.2), ("0", 0.2)]))
        outcome = await asyncio.wait_for(call.done, 30)
        await r.settle()
        assert outcome.answered_by == agent and outcome.queue == "hotline_general"
        assert r.agi.prompts(call.ivr_channel) == [r.prompt("greeting"),
                                                   r.prompt("emergency_menu")]
        case = await case_of(r, call.ivr_uniqueid)
        assert list(case.ivr_path[:3]) == ["greeting:key:7", "emergency:key:0", "menu:human"]


async def test_language_key_switches_to_the_12345_menu(tmp_path: Path) -> None:
    async with menu_rig(tmp_path, menu_config(tmp_path)) as r:
        agent = await r.add_agent(1005, "water")
        call = await r.sim.place_call(caller([("*", 0.2), ("1", 0.2)]))
        outcome = await asyncio.wait_for(call.done, 30)
        await r.settle()
        assert outcome.answered_by == agent
        ch = call.ivr_channel
        assert r.agi.prompts(ch) == [r.prompt("greeting"), r.prompt("greeting", "zh-CN")]
        assert r.agi.variables(ch)["CHANNEL(language)"] == "zh_CN"
        case = await case_of(r, call.ivr_uniqueid)
        assert case.locale == "zh-CN" and "lang:zh-CN" in case.ivr_path


# ---- case status lookup (过程查询) ------------------------------------------------------------
async def test_status_lookup_reads_status_and_deadline(tmp_path: Path) -> None:
    async with menu_rig(tmp_path, menu_config(tmp_path)) as r:
        number = await open_case(r, "earlier-call")
        before = await r.service.store.get(number)
        assert before is not None and before.deadline is not None
        call = await r.sim.place_call(caller([("6", 0.2), (number + "#", 0.2)]))
        outcome = await asyncio.wait_for(call.done, 40)
        await r.settle()
        ch = call.ivr_channel
        assert outcome.answered_by is None and not outcome.hung_up_by_citizen
        assert r.agi.prompts(ch) == [r.prompt(p) for p in (
            "greeting", "status_ask", "status_intro", "status_accepted", "status_deadline",
            "status_more", "goodbye")]
        tz = ZoneInfo(r.config.service.timezone)
        assert r.agi.said(ch) == [number, before.deadline.astimezone(tz).strftime("%Y%m%d")]
        case = await case_of(r, call.ivr_uniqueid)
        assert str(case.outcome) == "self_service"
        assert "status:found:accepted" in case.ivr_path and "menu:status" in case.ivr_path


async def test_status_lookup_wrong_number_twice_goes_to_a_person(tmp_path: Path) -> None:
    async with menu_rig(tmp_path, menu_config(tmp_path)) as r:
        agent = await r.add_agent(1006, "hotline_general")
        call = await r.sim.place_call(caller([("6", 0.2), ("20200101999999#", 0.2),
                                              ("123#", 0.2)]))
        outcome = await asyncio.wait_for(call.done, 40)
        await r.settle()
        assert outcome.answered_by == agent and outcome.queue == "hotline_general"
        assert r.agi.prompts(call.ivr_channel) == [r.prompt(p) for p in (
            "greeting", "status_ask", "status_not_found", "status_ask", "status_not_found")]
        assert r.agi.said(call.ivr_channel) == []
        case = await case_of(r, call.ivr_uniqueid)
        assert list(case.ivr_path[:5]) == ["greeting:key:6", "status:not-found", "status:not-found",
                                     "status:gave-up", "menu:human"]


# ---- waiting: a callback instead ------------------------------------------------------------
async def test_callback_key_in_the_queue_books_a_callback(tmp_path: Path) -> None:
    async with menu_rig(tmp_path, menu_config(tmp_path)) as r:
        # Nobody in energy: the caller waits, then presses 5 (the hold prompt offers it).
        call = await r.sim.place_call(caller([("2", 0.2)], keys_in_queue=[("5", 3.0)]))
        outcome = await asyncio.wait_for(call.done, 40)
        await r.settle()
        assert outcome.queue == "energy" and not outcome.abandoned
        assert not outcome.hung_up_by_citizen           # the service ended the call
        assert r.agi.prompts(call.ivr_channel)[-1] == r.prompt("callback_confirm")
        case = await case_of(r, call.ivr_uniqueid)
        assert str(case.outcome) == "callback" and case.topic == "energy"
        assert list(case.ivr_path[-2:]) == ["queue:energy", "wait:callback"]
        timeline = await r.service.store.timeline(case.number)
        tasks = [e for e in timeline if e.kind == "callback_task"]
        assert len(tasks) == 1 and tasks[0].detail["reason"] == "callback"
        snapshot = r.sim.queue_snapshot()["energy"]
        assert snapshot.callers == () and snapshot.abandoned == 0


# ---- after hours: a message, transcribed into the case ----------------------------------
async def test_after_hours_message_becomes_a_case_with_its_transcript(
        tmp_path: Path, engine: SpeechEngine) -> None:
    cfg = menu_config(tmp_path, speech=True, messages_dir=str(tmp_path / "messages"))
    today = datetime.now(ZoneInfo(cfg.service.timezone)).date()
    ko = cfg.ivr.menus["ko-KR"].model_copy(update={
        "holidays": [today + timedelta(days=d) for d in (-1, 0, 1)], "after_hours": "closed"})
    cfg = cfg.model_copy(update={"ivr": cfg.ivr.model_copy(update={
        "menus": {**cfg.ivr.menus, "ko-KR": ko}})})
    async with menu_rig(tmp_path, cfg, speed=2.0, engine=engine) as r:
        call = await r.sim.place_call(caller([("1", 0.3)],
                                             speech_wav=wav_of("하수도", tmp_path / "m.wav")))
        outcome = await asyncio.wait_for(call.done, 60)
        await r.settle()
        assert outcome.speech_sessions == 1 and outcome.answered_by is None
        assert r.agi.prompts(call.ivr_channel) == [
            r.prompt("closed"), r.prompt("message_intro"), r.prompt("message_thanks")]
        case = await case_of(r, call.ivr_uniqueid)
        assert list(case.ivr_path[:4]) == ["hours:closed", "closed:key:1", "message:recorded",
                                     "menu:message"]
        # Free transcription of espeak-ng's Korean is rough (bench/RESULTS.md); the topic is
        # spotted in the same recording.
        assert case.transcript
        assert case.topic == "water"
        assert case.description is not None and "voice message" in case.description
        recorded = case.description.rsplit(": ", 1)[1]
        with wave.open(recorded, "rb") as w:
            assert w.getframerate() == 8000 and w.getnframes() > 4000
        assert str(case.outcome) == "callback"
        kinds = [e.kind for e in await r.service.store.timeline(case.number)]
        assert "callback_task" in kinds


def _closed_today(cfg: HotlineConfig) -> HotlineConfig:
    today = datetime.now(ZoneInfo(cfg.service.timezone)).date()
    ko = cfg.ivr.menus["ko-KR"].model_copy(update={
        "holidays": [today + timedelta(days=d) for d in (-1, 0, 1)], "after_hours": "closed"})
    return cfg.model_copy(update={"ivr": cfg.ivr.model_copy(update={
        "menus": {**cfg.ivr.menus, "ko-KR": ko}})})


async def test_after_hours_message_recorded_by_asterisk_when_audiosocket_fails(
        tmp_path: Path, engine: SpeechEngine) -> None:
    """Speech is on, but Asterisk cannot reach the service's AudioSocket (a wrong advertise
    address, a firewall): the message is recorded by Asterisk with RECORD FILE instead, and
    the citizen still gets the callback they were promised."""
    cfg = _closed_today(menu_config(tmp_path, speech=True,
                                    messages_dir=str(tmp_path / "messages")))
    cfg = cfg.model_copy(update={"audiosocket": cfg.audiosocket.model_copy(
        update={"listen_host": "127.0.0.1", "advertise": "127.0.0.2:9"})})   # unreachable
    async with menu_rig(tmp_path, cfg, speed=2.0, engine=engine,
                        record_dir=tmp_path / "asterisk") as r:
        call = await r.sim.place_call(caller([("1", 0.3), ("#", 3.0)]))
        outcome = await asyncio.wait_for(call.done, 60)
        await r.settle()
        assert outcome.answered_by is None
        case = await case_of(r, call.ivr_uniqueid)
        assert "message:recorded" in case.ivr_path, case.ivr_path
        assert case.description is not None and "asterisk:" in case.description
        recorded = tmp_path / "asterisk" / case.description.rsplit("asterisk:/", 1)[1]
        assert recorded.is_file()
        assert str(case.outcome) == "callback"
        kinds = [e.kind for e in await r.service.store.timeline(case.number)]
        assert "callback_task" in kinds


# ---- a malformed menu ---------------------------------------------------------------------
def test_malformed_menu_one_error_naming_the_node_and_no_start(tmp_path: Path) -> None:
    bad = tmp_path / "hotline.toml"
    bad.write_text("""
[ivr.menus.ko-KR]
language = "ko-KR"
[ivr.menus.ko-KR.prompts]
greeting = "안녕하세요"
[ivr.menus.ko-KR.nodes.greeting]
prompts = ["greeting"]
keys = { "6" = { do = "goto", node = "status" } }
""", encoding="utf-8")
    # This checkout's code, whatever the installed hotline points at.
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    r = subprocess.run([sys.executable, "-m", "ivr.cli", "serve", "--config", str(bad)],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env,
                       check=False)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert str(bad) in lines[0]
    assert "ivr.menus.ko-KR.nodes.greeting.keys.6" in lines[0]
    assert "node 'status' does not exist" in lines[0]
    assert "started" not in r.stderr


@pytest.mark.parametrize(("toml", "error"), [
    # A menu in a file replaces the shipped one whole: each of these is a whole menu.
    ('prompts = ["greeting", "nowhere"]',
     "key 'ivr.menus.ko-KR.nodes.greeting.prompts.1': prompt 'nowhere' does not exist"),
    ('prompts = ["greeting"]\nkeys = { "1" = { do = "route", topic = "parking" } }',
     "key 'ivr.menus.ko-KR.nodes.greeting.keys.1': topic 'parking' does not exist"),
    ('prompts = ["greeting"]\nkeys = { "1" = { do = "route", group = "police" } }',
     "key 'ivr.menus.ko-KR.nodes.greeting.keys.1': group 'police' is not a routing group"),
    ('prompts = ["greeting"]\nkeys = { "6" = { do = "status" } }',
     ("key 'ivr.menus.ko-KR.nodes.greeting.keys.6': action 'status' needs the menu's "
      "[status] section")),
    ('prompts = ["greeting"]\nkeys = { "2" = { do = "goto" } }',
     "key 'ivr.menus.ko-KR.nodes.greeting.keys.2': action 'goto' needs node"),
])
def test_menu_reference_errors_name_the_path(tmp_path: Path, toml: str, error: str) -> None:
    from ivr.config import ConfigError, load_config
    path = tmp_path / "hotline.toml"
    path.write_text(f"""
[ivr.menus.ko-KR]
language = "ko-KR"
[ivr.menus.ko-KR.prompts]
greeting = "안녕하세요"
e = "119"
[ivr.menus.ko-KR.emergency]
gas_leak = {{ mode = "advise", prompt = "e" }}
fire = {{ mode = "advise", prompt = "e" }}
crime = {{ mode = "advise", prompt = "e" }}
[ivr.menus.ko-KR.nodes.greeting]
{toml}
""", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert error in str(err.value)
    assert str(err.value).count("\n") == 0          # one error, one line
