"""Emergencies in the shipped menus through pbxsim: by key or by speech, advised or
transferred, and confirmed by key when the keyword spotter heard one where ordinary topics
are heard too (see ``tests.menu_harness``)."""

# ruff: noqa: F811  (pytest fixtures are imported by name)

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ivr.config import HotlineConfig
from ivr.menus.model import ActionConfig, EmergencyConfig, MenuConfig
from speech.engine import SpeechEngine
from tests.menu_harness import caller, case_of, menu_config, menu_rig
from tests.speech_fixtures import engine, wav_of  # noqa: F401 (fixture)


def _with_ko(cfg: HotlineConfig, ko: MenuConfig) -> HotlineConfig:
    """``cfg`` with ``ko`` as its ko-KR menu."""
    menus = {**cfg.ivr.menus, "ko-KR": ko}
    return cfg.model_copy(update={"ivr": cfg.ivr.model_copy(update={"menus": menus})})


async def test_emergency_advice_then_a_person_first(tmp_path: Path) -> None:
    async with menu_rig(tmp_path, menu_config(tmp_path)) as r:
        agent = await r.add_agent(1004, "hotline_general")
        # Told to hang up and dial 119, this caller stays on the line.
        call = await r.sim.place_call(caller([("7", 0.2), ("1", 0.2)]))
        outcome = await asyncio.wait_for(call.done, 30)
        await r.settle()
        assert r.agi.prompts(call.ivr_channel) == [
            r.prompt("greeting"), r.prompt("emergency_menu"), r.prompt("emergency_gas")]
        assert outcome.answered_by == agent
        case = await case_of(r, call.ivr_uniqueid)
        assert case.topic == "gas_leak" and str(case.urgency) == "critical"
        assert {"emergency:gas_leak", "emergency:advised", "menu:emergency"} <= set(
            case.ivr_path)


async def test_an_emergency_said_at_the_emergency_menu_gets_its_advice(
        tmp_path: Path, engine: SpeechEngine) -> None:
    """The caller presses 7 (emergencies), then says what it is: the fire advice (hang up,
    dial 119), never an ordinary department's queue."""
    async with menu_rig(tmp_path, menu_config(tmp_path, speech=True), speed=2.0,
                        engine=engine) as r:
        await r.add_agent(1007, "hotline_general")
        wav = wav_of("화재 신고합니다", tmp_path / "fire.wav")
        call = await r.sim.place_call(caller([("7", 0.3)], speech_wav=wav))
        outcome = await asyncio.wait_for(call.done, 60)
        await r.settle()
        assert r.agi.prompts(call.ivr_channel)[-1] == r.prompt("emergency_fire")
        case = await case_of(r, call.ivr_uniqueid)
        assert list(case.ivr_path[:4]) == ["greeting:key:7", "emergency:speech:fire",
                                           "emergency:fire", "emergency:advised"]
        assert case.topic == "fire" and str(case.urgency) == "critical"
        assert outcome.queue == "hotline_general"


def _spoken_emergency(cfg: HotlineConfig, how: str) -> HotlineConfig:
    return _with_ko(cfg, cfg.ivr.menus["ko-KR"].model_copy(update={"spoken_emergency": how}))


@pytest.mark.parametrize("presses", ["2", ""])
async def test_an_emergency_heard_at_the_greeting_is_confirmed_by_key(
        tmp_path: Path, engine: SpeechEngine, presses: str) -> None:
    """The spotter heard "화재" at the greeting. It also hears emergency words in everyday
    requests, and the advice sends the caller to 119: so the emergency menu asks for the
    key, and listens for nothing else. The caller who presses it gets the advice; one who
    does not (a request misheard) reaches a person, unadvised, after one asking, whatever
    the emergency menu does otherwise when no key comes (here: hang up)."""
    cfg = menu_config(tmp_path, speech=True)
    ko = cfg.ivr.menus["ko-KR"]
    hang_up = ko.nodes["emergency"].model_copy(update={"on_failure": ActionConfig(
        do="hangup")})
    ko = ko.model_copy(update={"nodes": {**ko.nodes, "emergency": hang_up}})
    cfg = _with_ko(cfg, ko)
    async with menu_rig(tmp_path, cfg, speed=2.0, engine=engine) as r:
        agent = await r.add_agent(1008, "hotline_general")
        wav = wav_of("화재", tmp_path / "fire.wav")
        # No key into the greeting (it is answered by speech), then the emergency menu's.
        call = await r.sim.place_call(caller([("", 0.0), (presses, 0.5)], speech_wav=wav))
        outcome = await asyncio.wait_for(call.done, 60)
        await r.settle()
        case = await case_of(r, call.ivr_uniqueid)
        prompts = r.agi.prompts(call.ivr_channel)
        assert prompts[:2] == [r.prompt("greeting"), r.prompt("emergency_menu")], prompts
        assert outcome.speech_sessions == 1          # nothing listened at the emergency menu
        assert case.ivr_path[0] == "greeting:speech:fire"
        assert outcome.answered_by == agent and outcome.queue == "hotline_general"
        if presses:
            assert prompts[-1] == r.prompt("emergency_fire")
            assert list(case.ivr_path[1:4]) == ["emergency:key:2", "emergency:fire",
                                                "emergency:advised"]
            assert case.topic == "fire" and str(case.urgency) == "critical"
        else:
            assert prompts == [r.prompt("greeting"), r.prompt("emergency_menu")]
            assert list(case.ivr_path[1:3]) == ["emergency:no-input", "menu:human"]
            assert case.topic != "fire" and str(case.urgency) != "critical"


async def test_an_emergency_heard_is_acted_on_at_once_where_configured(
        tmp_path: Path, engine: SpeechEngine) -> None:
    cfg = _spoken_emergency(menu_config(tmp_path, speech=True), "act")
    async with menu_rig(tmp_path, cfg, speed=2.0, engine=engine) as r:
        await r.add_agent(1009, "hotline_general")
        wav = wav_of("화재", tmp_path / "fire.wav")
        call = await r.sim.place_call(caller([], speech_wav=wav))
        await asyncio.wait_for(call.done, 60)
        await r.settle()
        assert r.agi.prompts(call.ivr_channel) == [r.prompt("greeting"),
                                                   r.prompt("emergency_fire")]
        case = await case_of(r, call.ivr_uniqueid)
        assert list(case.ivr_path[:3]) == ["greeting:speech:fire", "emergency:fire",
                                           "emergency:advised"]


async def test_an_emergency_is_confirmed_where_it_was_heard_if_only_that_node_offers_it(
        tmp_path: Path, engine: SpeechEngine) -> None:
    """A menu whose greeting offers fire on its own key 7 and no other node offers it: the
    greeting itself asks again, for keys only, rather than acting on what speech heard."""
    cfg = menu_config(tmp_path, speech=True)
    ko = cfg.ivr.menus["ko-KR"]
    greeting = ko.nodes["greeting"].model_copy(update={"keys": {
        **ko.nodes["greeting"].keys, "7": ActionConfig(do="emergency", topic="fire")}})
    emergency = ko.nodes["emergency"].model_copy(update={"keys": {
        k: a for k, a in ko.nodes["emergency"].keys.items() if a.topic != "fire"}})
    ko = ko.model_copy(update={"nodes": {**ko.nodes, "greeting": greeting,
                                         "emergency": emergency}})
    cfg = _with_ko(cfg, ko)
    async with menu_rig(tmp_path, cfg, speed=2.0, engine=engine) as r:
        await r.add_agent(1010, "hotline_general")
        wav = wav_of("화재", tmp_path / "fire.wav")
        call = await r.sim.place_call(caller([("", 0.0), ("7", 0.5)], speech_wav=wav))
        outcome = await asyncio.wait_for(call.done, 60)
        await r.settle()
        assert r.agi.prompts(call.ivr_channel) == [
            r.prompt("greeting"), r.prompt("greeting"), r.prompt("emergency_fire")]
        assert outcome.speech_sessions == 1
        case = await case_of(r, call.ivr_uniqueid)
        assert list(case.ivr_path[:4]) == ["greeting:speech:fire", "greeting:key:7",
                                           "emergency:fire", "emergency:advised"]


def _fire_transferred(cfg: HotlineConfig) -> HotlineConfig:
    """The ko-KR menu with fire transferred (AMI Redirect) to the fire-brigade context."""
    ko = cfg.ivr.menus["ko-KR"]
    emergency = {**ko.emergency, "fire": EmergencyConfig(
        mode="transfer", prompt="emergency_fire", redirect="fire-brigade,119,1")}
    return _with_ko(cfg, ko.model_copy(update={"emergency": emergency}))


async def test_emergency_transfer_per_config(tmp_path: Path) -> None:
    cfg = _fire_transferred(menu_config(tmp_path))
    fire_brigade = ("\n[fire-brigade]\nexten => 119,1,Set(REACHED=fire-brigade)\n"
                    " same => n,Wait(1)\n same => n,Hangup()\n")
    async with menu_rig(tmp_path, cfg, extra_dialplan=fire_brigade) as r:
        call = await r.sim.place_call(caller([("7", 0.2), ("2", 0.2)]))
        await asyncio.wait_for(call.done, 30)
        await r.settle()
        assert r.agi.prompts(call.ivr_channel)[-1] == r.prompt("emergency_fire")
        assert r.sim.channel_variable(call.ivr_channel, "REACHED") == "fire-brigade"
        case = await case_of(r, call.ivr_uniqueid)
        assert str(case.outcome) == "transferred" and case.topic == "fire"
        assert "emergency:transferred" in case.ivr_path and case.queue is None


async def test_an_emergency_transfer_outlasts_the_ivr_watchdog(tmp_path: Path) -> None:
    """The fire brigade talks for longer than the IVR watchdog: the service clears the
    channel's TIMEOUT(absolute) before the Redirect, so Asterisk does not cut the emergency
    call (the brigade's context has no T extension: the timeout would hang it up)."""
    cfg = _fire_transferred(menu_config(tmp_path))
    watchdog_s = cfg.ivr.watchdog_s
    assert watchdog_s > 0
    fire_brigade = ("\n[fire-brigade]\nexten => 119,1,Set(REACHED=fire-brigade)\n"
                    f" same => n,Wait({watchdog_s + 30})\n"
                    " same => n,Set(REACHED=talked)\n same => n,Hangup()\n")
    async with menu_rig(tmp_path, cfg, extra_dialplan=fire_brigade, speed=20.0) as r:
        call = await r.sim.place_call(caller([("7", 0.2), ("2", 0.2)]))
        await asyncio.wait_for(call.done, 30)
        assert r.sim.channel_variable(call.ivr_channel, "REACHED") == "talked"
