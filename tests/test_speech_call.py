"""Speech through the whole call path: espeak-ng Korean spoken by a pbxsim citizen over
AudioSocket into the service's Vosk, topic into the case, the caller queued accordingly."""

# ruff: noqa: F811  (pytest fixtures are imported by name)

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import pytest

from ivr.config import load_config
from ivr.demo import caller_script
from ivr.menus.engine import paths_of
from pbxsim import CitizenScript
from routing.topics import TopicCatalogue
from speech.audio_stream import AudioStream
from speech.engine import SpeechEngine
from tests.callpath_fixtures import rig
from tests.speech_fixtures import engine, partly_copied_model, wav_of  # noqa: F401 (fixture)

# A short answer per topic, as the greeting asks for one ("say water, heating, ..."). These
# are espeak-ng's Korean voice, which the model hears reliably only for some words (see
# bench/RESULTS.md); each phrase contains one of the topic's default keywords. Each is one
# the spotter hears alike from wherever the capture starts: what Vosk makes of a phrase
# depends on the audio before it (its online feature normalisation), and at some starting
# points it heard the '문의' of '마을버스 문의' or '보험 문의' as a keyword of another topic
# (가스누출 at 0.3-0.9), which rightly sent the caller to a person. Multi-word phrases are
# bench.speech's to measure, not a routing test's to hope for.
PHRASES = {
    "water": "하수도",
    "energy": "난방비요",
    "housing": "관리비요",
    "transport": "버스",
    "social_security": "보험",
}


async def test_every_ko_topic_is_recognised_and_routed(tmp_path: Path,
                                                       engine: SpeechEngine) -> None:
    catalogue = TopicCatalogue.from_config(load_config(env={}).topics)
    # (Emergencies are not routed to a department: see tests/test_menus.py.)
    topics = [t for t in catalogue.topics if t.keywords.get("ko-KR") and not t.emergency]
    assert len(topics) >= 5
    async with rig(tmp_path, speed=1.0, engine=engine, speech=True) as r:
        assert r.service.calls.deps.speech is not None
        calls = {}
        # A caller the spotter misheard reaches a person: the assertions below say so.
        await r.add_agent(1099, r.config.group(r.config.ivr.default_group).queue, talk_s=1.0)
        for i, t in enumerate(topics):
            await r.add_agent(1100 + i, r.config.group(t.groups[0]).queue, talk_s=1.0)
            assert any(k in PHRASES[t.name] for k in t.keywords["ko-KR"])
            wav = wav_of(PHRASES[t.name], tmp_path / f"{t.name}.wav")
            calls[t.name] = await r.sim.place_call(CitizenScript(speech_wav=wav, keys=[]))
        outcomes = await asyncio.wait_for(asyncio.gather(*(c.done for c in calls.values())), 90)
        await r.settle()
        for (topic, call), outcome in zip(calls.items(), outcomes, strict=True):
            case = await r.service.store.get_by_call("default", call.ivr_uniqueid)
            assert case is not None
            assert case.topic == topic, (topic, case.ivr_path, case.transcript)
            assert outcome.queue == r.config.group(catalogue.get(topic).groups[0]).queue
            assert f"greeting:speech:{topic}" in case.ivr_path
            assert outcome.speech_sessions >= 1


async def test_a_line_that_sends_nothing_while_the_caller_is_quiet_is_still_heard(
        tmp_path: Path, engine: SpeechEngine, caplog: pytest.LogCaptureFixture) -> None:
    """Silence suppression on the caller's line: after the words, Asterisk forwards no audio
    at all. The quiet is still heard as the end of the answer (not the listening's maximum
    length, wall-clock), and the caller is routed by what they said."""
    async with rig(tmp_path, speed=1.0, engine=engine, speech=True, transcription="off",
                   sim_kw={"silence_suppression": True}) as r:
        await r.add_agent(1170, "transport", talk_s=0.5)
        wav = wav_of(PHRASES["transport"], tmp_path / "dtx.wav")
        with caplog.at_level(logging.INFO, logger="speech"):
            call = await r.sim.place_call(CitizenScript(speech_wav=wav, keys=[]))
            outcome = await asyncio.wait_for(call.done, 60)
            await r.settle()
        case = await r.service.store.get_by_call("default", call.ivr_uniqueid)
        assert case is not None and case.topic == "transport", case
        assert outcome.queue == "transport"
    ends = [m.getMessage() for m in caplog.records if m.name == "speech.capture"]
    assert ends and all(": endpoint after" in m for m in ends), ends
    assert any("counting gaps as silence" in m.getMessage() for m in caplog.records)


async def test_asking_for_a_person_reaches_one_without_a_transcript(
        tmp_path: Path, engine: SpeechEngine) -> None:
    """With transcription off only the keyword spotter listens: it listens for the menu's
    person words too, so "상담원 연결해 주세요" gets a person, not a guessed department."""
    async with rig(tmp_path, speed=1.0, engine=engine, speech=True,
                   transcription="off") as r:
        for i, q in enumerate(["hotline_general", "water", "energy", "social_security"]):
            await r.add_agent(1150 + i, q, talk_s=0.5)
        wav = wav_of("상담원 연결해 주세요", tmp_path / "person.wav")
        call = await r.sim.place_call(CitizenScript(speech_wav=wav, keys=[]))
        outcome = await asyncio.wait_for(call.done, 60)
        await r.settle()
        case = await r.service.store.get_by_call("default", call.ivr_uniqueid)
        assert case is not None and case.transcript is None
        assert outcome.queue == "hotline_general", case.ivr_path
        assert "menu:human" in case.ivr_path


async def test_a_12345_centre_configured_as_documented_is_listened_to(
        tmp_path: Path, engine: SpeechEngine) -> None:
    """service.locale = "zh-CN" and a model of its own (the README's 12345 setup): callers
    of the zh-CN menu are listened to. (The bundled Korean model stands in for the Chinese
    one: what is tested is that the service listens, not what it understands.)"""
    toml = tmp_path / "hotline.toml"
    toml.write_text(f'[service]\nlocale = "zh-CN"\n[speech]\n'
                    f'model_path = "{engine.model_path}"\n', encoding="utf-8")
    base = load_config(toml, env={})
    async with rig(tmp_path, speed=2.0, engine=engine, speech=True,
                   model_path=engine.model_path, base=base) as r:
        await r.add_agent(1601, "hotline_general", talk_s=0.5)
        wav = wav_of("하수도", tmp_path / "s.wav")
        call = await r.sim.place_call(CitizenScript(speech_wav=wav, keys=[]))
        outcome = await asyncio.wait_for(call.done, 60)
        await r.settle()
        assert outcome.speech_sessions >= 1
        case = await r.service.store.get_by_call("default", call.ivr_uniqueid)
        assert case is not None and any(s.startswith("greeting:speech:")
                                        for s in case.ivr_path), case.ivr_path


async def test_key_during_greeting_skips_listening(tmp_path: Path,
                                                   engine: SpeechEngine) -> None:
    async with rig(tmp_path, speed=2.0, engine=engine, speech=True) as r:
        await r.add_agent(1201, "water", talk_s=1.0)
        call = await r.sim.place_call(CitizenScript(keys=[("1", 0.3)]))
        outcome = await asyncio.wait_for(call.done, 30)
        assert outcome.queue == "water" and outcome.speech_sessions == 0


async def test_the_demo_emergency_caller_with_a_late_key_gets_the_advice(
        tmp_path: Path, engine: SpeechEngine) -> None:
    """The demo's emergency caller presses 7 during the greeting and its emergency key only
    after the emergency menu's prompt ended, while the IVR listens: that key is heard and
    the caller gets the advice. (The demo's callers pressed their first key again whenever
    the IVR listened: this one answered the emergency menu with 7, twice, and reached a
    person unadvised.)"""
    async with rig(tmp_path, speed=2.0, engine=engine, speech=True) as r:
        await r.add_agent(1701, "hotline_general", talk_s=0.5)
        script = caller_script([("7", 0.3), ("2", 1.5)], 0.3, caller_num="13800138007",
                               patience_s=60.0)
        call = await r.sim.place_call(script)
        outcome = await asyncio.wait_for(call.done, 60)
        await r.settle()
        case = await r.service.store.get_by_call(r.config.service.node, call.ivr_uniqueid)
        assert case is not None
        assert outcome.keys_pressed == "72", case.ivr_path
        assert "emergency:key:2" in case.ivr_path and "emergency:advised" in case.ivr_path
        assert paths_of(case.ivr_path) == "emergency"


@pytest.mark.parametrize("model", ["broken", "missing"])
async def test_broken_model_callers_continue_on_keys(tmp_path: Path, model: str) -> None:
    broken = tmp_path / "model"
    if model == "broken":
        broken.mkdir()
        (broken / "README").write_text("not a model")
    async with rig(tmp_path, speed=2.0, speech=True, model_path=str(broken)) as r:
        assert r.service.calls.deps.speech is None      # started anyway, keys only
        await r.add_agent(1401, "housing", talk_s=1.0)
        call = await r.sim.place_call(CitizenScript(keys=[("3", 0.3)]))
        outcome = await asyncio.wait_for(call.done, 30)
        assert outcome.queue == "housing"


async def test_a_partly_copied_model_disables_speech_not_the_service(tmp_path: Path) -> None:
    """A truncated graph/HCLr.fst loads, then segfaults Vosk at the first caller's keyword
    grammar. The service checks the model in a child process at start: speech is off (the
    log says why), and callers are served with keys."""
    model = partly_copied_model(tmp_path / "model")
    async with rig(tmp_path, speed=2.0, speech=True, model_path=str(model)) as r:
        assert r.service.calls.deps.speech is None
        await r.add_agent(1402, "water", talk_s=1.0)
        call = await r.sim.place_call(CitizenScript(keys=[("1", 0.3)]))
        outcome = await asyncio.wait_for(call.done, 30)
        assert outcome.queue == "water" and outcome.speech_sessions == 0


async def test_vosk_failing_mid_call_falls_back_to_keys(
        tmp_path: Path, engine: SpeechEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    async with rig(tmp_path, speed=2.0, engine=engine, speech=True) as r:
        speech = r.service.calls.deps.speech
        assert speech is not None

        async def broken(*_a: object, **_k: object) -> object:
            raise RuntimeError("vosk decoder crashed")
        # The engine is the module's (shared by the tests after this one): undone at the end.
        monkeypatch.setattr(speech._engine, "decoder", broken)
        await r.add_agent(1301, "energy", talk_s=1.0)
        # Silent through the greeting, then keys at the fallback prompt.
        call = await r.sim.place_call(CitizenScript(keys=[("", 0.1), ("2", 0.3)]))
        outcome = await asyncio.wait_for(call.done, 40)
        assert outcome.queue == "energy"


async def test_a_wedged_vosk_costs_the_caller_one_wait_then_keys(
        tmp_path: Path, engine: SpeechEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Vosk stops answering mid-call (a decoder call that never returns): listening gives
    up after the longest utterance plus a bounded slack, and the caller goes on with keys."""
    release = threading.Event()

    class Wedged:
        """A recognizer whose first decode never returns (until the test ends)."""

        def __init__(self, rec: object) -> None:
            self._rec = rec

        def AcceptWaveform(self, _pcm: bytes) -> bool:        # Vosk's name
            release.wait()
            return False

        def __getattr__(self, name: str) -> object:
            return getattr(self._rec, name)

    real = engine.recognizer_sync
    monkeypatch.setattr(engine, "recognizer_sync",
                        lambda *a, **k: Wedged(real(*a, **k)))
    try:
        async with rig(tmp_path, speed=2.0, engine=engine, speech=True,
                       max_utterance_s=1.0) as r:
            await r.add_agent(1302, "energy", talk_s=1.0)
            # Talks at the greeting (Vosk never answers), then keys at the fallback prompt.
            call = await r.sim.place_call(CitizenScript(
                keys=[("", 0.1), ("2", 0.3)], speech_wav=wav_of("난방비요", tmp_path / "energy.wav")))
            outcome = await asyncio.wait_for(call.done, 60)
            assert outcome.queue == "energy" and outcome.answered_by == "agent1302"
            await r.settle()
            case = await r.service.store.get_by_call(r.config.service.node,
                                                     outcome.ivr_uniqueid)
            assert case is not None and case.topic == "energy"
    finally:
        release.set()           # the wedged pool threads go back to the shared engine



async def test_a_keyword_heard_before_audiosocket_gives_up_still_routes_the_caller(
        tmp_path: Path, engine: SpeechEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Spotting only (no transcript). The service stops sending media (overloaded), so
    Asterisk's AudioSocket gives up mid-sentence; the caller is still on the line and has
    already said the keyword: what was heard counts, and they are not sent to the key menu."""
    monkeypatch.setattr(AudioStream, "_send_media", lambda self, frames: None)
    async with rig(tmp_path, speed=1.0, engine=engine, speech=True, transcription="off",
                   sim_kw={"audiosocket_timeout_s": 1.6}) as r:
        await r.add_agent(1160, "transport", talk_s=0.5)
        await r.add_agent(1161, "hotline_general", talk_s=0.5)
        wav = wav_of("마을버스 노선이 언제부터 바뀌는지 알고 싶어서 전화했습니다",
                     tmp_path / "long.wav")
        call = await r.sim.place_call(CitizenScript(speech_wav=wav, keys=[]))
        outcome = await asyncio.wait_for(call.done, 60)
        await r.settle()
        case = await r.service.store.get_by_call("default", call.ivr_uniqueid)
        assert case is not None
        # Heard (the long sentence only partly explained by its keyword may still send the
        # caller to a person, at low confidence), not asked again on keys.
        assert case.ivr_path[0] == "greeting:speech:transport", case.ivr_path
        assert case.topic == "transport"
        assert outcome.queue in ("transport", "hotline_general")
