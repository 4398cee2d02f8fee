"""Generated Asterisk files: asterisklint, determinism, prompts, queues, the AMI user."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import wave
from pathlib import Path

import pytest

from dialplan import DialplanError, build_text, generate
from dialplan.cli import cmd_dialplan
from dialplan.common import service_address, sound_dirs
from dialplan.extensions import agi_priority, guard_expression, stale_after_s
from dialplan.manager import ACTIONS, READ, WRITE
from dialplan.prompts import config_prompts, greeting_text, hotline_locales
from dialplan.queues import PenaltyRule, PenaltyStep, render_queuerules, render_queues
from ivr.config import HotlineConfig, load_config
from pbxsim.config import SimConfig
from pbxsim.dialplan import Dialplan
from pbxsim.expr import substitute
from pbxsim.media import SoundLibrary
from pbxsim.queues import parse_queues_conf


@pytest.fixture(scope="module")
def config() -> HotlineConfig:
    return load_config(env={})


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory, config: HotlineConfig) -> Path:
    path = tmp_path_factory.mktemp("asterisk")
    generate(config, path)
    return path


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _with(config: HotlineConfig, **sections: dict[str, object]) -> HotlineConfig:
    return config.model_copy(update={name: getattr(config, name).model_copy(update=changes)
                                     for name, changes in sections.items()})


def test_extensions_conf_passes_asterisklint(out: Path) -> None:
    if shutil.which("asterisklint") is None:
        msg = "asterisklint is not installed (pip install asterisklint)"
        if os.environ.get("CI"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    done = subprocess.run(["asterisklint", "dialplan-check", str(out / "extensions.conf")],
                          capture_output=True, text=True, timeout=60, check=False)
    # No ALINT_IGNORE: not even the hints (H_*) may be reported.
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_same_config_same_bytes(config: HotlineConfig, out: Path, tmp_path: Path) -> None:
    generate(config, tmp_path)
    first, second = _tree(out), _tree(tmp_path)
    assert list(first) == list(second)
    assert [name for name in first if first[name] != second[name]] == []
    assert set(first) >= {"extensions.conf", "queues.conf", "manager.conf"}
    assert "queuerules.conf" not in first  # the routing configuration has no penalty rules


def test_every_referenced_prompt_is_an_8khz_mono_wav(config: HotlineConfig, out: Path) -> None:
    queues = (out / "queues.conf").read_text()
    announced = {line.split("=", 1)[1] for line in queues.splitlines()
                 if line.startswith("periodic-announce=")}
    referenced = {config.ivr.greeting_prompt} | announced | {p.name for p in config_prompts(config)}
    dirs = sound_dirs(hotline_locales(config))
    assert set(dirs) == {"ko-KR", "zh-CN"} and set(dirs.values()) == {"ko", "zh"}
    for name in sorted(referenced):
        # The language-less file is what a channel without a language of its own plays.
        for path in [out / "sounds" / f"{name}.wav",
                     *(out / "sounds" / d / f"{name}.wav" for d in dirs.values())]:
            with wave.open(str(path), "rb") as w:
                assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
                assert w.getnframes() > 8000, f"{path} is shorter than a second"
    # pbxsim, given the generated sounds directory, plays them under the names referenced.
    library = SoundLibrary(SimConfig(sounds_dirs=(out / "sounds",)))
    assert [name for name in sorted(referenced) if library.load(name) is None] == []
    default = (out / "sounds" / f"{config.ivr.greeting_prompt}.wav").read_bytes()
    assert default == (out / "sounds" / "ko" / f"{config.ivr.greeting_prompt}.wav").read_bytes()


def test_greeting_names_every_key_and_invites_speech_only_in_the_models_language(
        config: HotlineConfig) -> None:
    ko, zh = greeting_text(config, "ko-KR"), greeting_text(config, "zh-CN")
    for key in [t.key for t in config.topics if t.key] + ["0"]:
        assert f"{key}번" in ko and f"按{key}" in zh
    assert "말씀하시거나" in ko and "说出" not in zh  # speech.locale is ko-KR
    assert "수도" in ko and "供水" in zh             # topics named by their first keyword


def test_entry_runs_in_pbxsim_and_the_guard_fails_open(config: HotlineConfig, out: Path) -> None:
    plan = Dialplan.parse((out / "extensions.conf").read_text())
    assert plan.globals == {}
    for number in ("12345", "+8612345", "s"):
        ext = plan.find_extension("hotline", number)
        assert ext is not None, number
        assert [s.app for s in ext.steps.values()] == [
            "Answer", "Set", "GotoIf", "Set", "AGI", "Set", "Set", "Set", "Set", "Goto", "Set",
            "Queue", "Hangup"]
        # The IVR watchdog: armed just before async AGI, cleared just after it.
        assert ext.steps[4].args == "TIMEOUT(absolute)=120"
        assert ext.steps[5].args == "agi:async" and agi_priority(120) == 5
        assert ext.steps[6].args == "TIMEOUT(absolute)=0"
        assert ext.steps[ext.labels["queue"]].args == "hotline_general,,,,300"
    watchdog = plan.find_extension("hotline", "T")
    assert watchdog is not None
    assert [s.app for s in watchdog.steps.values()] == [
        "Set", "Set", "Set", "Set", "Queue", "Hangup"]
    assert watchdog.steps[2].args == "TIMEOUT(absolute)=0"
    assert watchdog.steps[5].args == "hotline_general,,,,300"
    stale = stale_after_s(config.ami)
    assert stale == 15  # 3 beats of 5 s; and beat + action timeout (5 + 10)
    now = 1_795_601_869

    def guard(heartbeat: str | None) -> str:
        values = {"EPOCH": str(now), "GLOBAL(HOTLINE_HEARTBEAT)": heartbeat or ""}
        return substitute(guard_expression(stale), lambda n: values.get(n, ""))

    assert guard(str(now - stale)) == "0"
    assert guard(str(now - stale - 1)) == "1"
    assert guard(None) == "1"  # never written: fail open


def test_stale_threshold_covers_a_slow_beat() -> None:
    ami = load_config(env={}).ami
    assert stale_after_s(ami.model_copy(update={"heartbeat_interval_s": 1.0})) == 11
    assert stale_after_s(ami.model_copy(update={"heartbeat_interval_s": 0.2,
                                                "action_timeout_s": 0.1})) == 1


def test_one_queue_per_group(config: HotlineConfig, out: Path) -> None:
    text = (out / "queues.conf").read_text()
    queues = parse_queues_conf(text)
    assert sorted(queues) == sorted(g.queue for g in config.routing.groups)
    assert "general" not in queues and "[general]" in text  # the section, never a queue
    for q in queues.values():
        assert (q.strategy, q.joinempty, q.leavewhenempty, q.ringinuse) == (
            "leastrecent", "yes", "no", False)
        assert q.timeout > 0 and q.wrapuptime > 0 and not q.members


def test_penalty_rules_render_when_routing_has_them(config: HotlineConfig) -> None:
    rules = (PenaltyRule("widen", (PenaltyStep(60, "+2"), PenaltyStep(30, "+1", "0"))),)
    assert render_queuerules(rules).split("\n\n", 1)[1] == (
        "[widen]\npenaltychange => 30,+1,0\npenaltychange => 60,+2\n")
    assert "defaultrule=widen" in render_queues(config, "hotline/hold", rules)
    with pytest.raises(DialplanError):
        render_queuerules((PenaltyRule("general", ()),))


def test_manager_user_has_least_privilege(config: HotlineConfig, out: Path) -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None,
                                       comment_prefixes=(";",))
    parser.read_string((out / "manager.conf").read_text())
    user = parser[config.ami.username]
    assert user["read"] == "agent,agi,call,dialplan,system"
    assert user["write"] == "agent,agi,call,originate,reporting"
    assert user["deny"] == "::/0"  # configparser keeps the last of the two deny lines
    assert user["permit"] == "127.0.0.1/255.255.255.255"
    assert user["secret"] == config.ami.secret
    assert "deny=0.0.0.0/0.0.0.0" in (out / "manager.conf").read_text()
    assert (out / "manager.conf").stat().st_mode & 0o077 == 0  # it holds the secret
    needed = {"Login", "Ping", "Setvar", "Getvar", "QueueAdd", "QueueRemove", "QueuePause",
              "QueuePenalty", "QueueStatus", "QueueSummary", "CoreShowChannels", "Redirect",
              "Originate", "Hangup", "AGI"}
    assert needed <= set(ACTIONS)
    for action, classes in ACTIONS.items():
        assert not classes or set(classes) & set(WRITE), action
    # Nothing beyond what some action needs: drop any write class and an action fails.
    for cls in WRITE:
        assert any(set(c) & set(WRITE) == {cls} for c in ACTIONS.values()), cls
    assert "system" not in WRITE and "command" not in WRITE and "config" not in WRITE
    assert set(READ) == {"agent", "agi", "call", "dialplan", "system"}


def test_permit_is_the_services_address(config: HotlineConfig) -> None:
    remote = _with(config, ami={"host": "10.0.0.5"},
                   audiosocket={"advertise": "10.0.0.9:9092"})
    assert service_address(remote) == "10.0.0.9"
    assert service_address(_with(config, ami={"host": "localhost"})) == "127.0.0.1"
    for advertise in ("hotline.example:9092", "127.0.0.1:9092"):
        with pytest.raises(DialplanError, match="audiosocket.advertise"):
            service_address(_with(remote, audiosocket={"advertise": advertise}))


def test_bad_prompt_names_and_shared_languages(config: HotlineConfig) -> None:
    for name in ("/var/lib/asterisk/sounds/greeting", "../greeting", "greeting.wav"):
        with pytest.raises(DialplanError, match="ivr.greeting_prompt"):
            config_prompts(_with(config, ivr={"greeting_prompt": name}))
    assert sound_dirs(["zh-TW", "ko-KR", "zh-CN"]) == {
        "ko-KR": "ko", "zh-CN": "zh_CN", "zh-TW": "zh_TW"}


def test_text_files_do_not_depend_on_the_output_place(config: HotlineConfig) -> None:
    # Nothing machine- or time-specific: the text is a function of the configuration alone.
    assert build_text(config) == build_text(load_config(env={}))
    text = build_text(config)["extensions.conf"].decode()
    assert "app_audiosocket" in text and "Queue(general" not in text


def test_cli_command(config: HotlineConfig, tmp_path: Path,
                     capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd_dialplan(config, tmp_path / "out") == 0
    printed = capsys.readouterr()
    assert str(tmp_path / "out" / "extensions.conf") in printed.out
    assert "ami.secret is the built-in default" in printed.err
    bad = _with(config, ivr={"greeting_prompt": "/abs/greeting"})
    assert cmd_dialplan(bad, tmp_path / "bad") == 1
    assert "ivr.greeting_prompt" in capsys.readouterr().err
