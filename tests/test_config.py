"""Configuration: defaults load, bad files are refused once with file, key and reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ivr.config import DATABASE_URL_ENV, ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "hotline.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_builtin_defaults_are_valid() -> None:
    cfg = load_config(env={})
    assert cfg.ivr.default_group in {g.name for g in cfg.routing.groups}
    assert all(t.groups for t in cfg.topics)


def test_file_merges_over_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, '[ami]\nport = 5039\nsecret = "x1"\n'), env={})
    assert cfg.ami.port == 5039 and cfg.ami.secret == "x1"
    assert cfg.ami.host == "127.0.0.1"   # untouched keys keep their defaults


def test_environment_database_url_wins(tmp_path: Path) -> None:
    p = write(tmp_path, '[database]\nurl = "sqlite+aiosqlite:///a.db"\n')
    cfg = load_config(p, env={DATABASE_URL_ENV: "postgresql+asyncpg://u@h/db"})
    assert cfg.database.url == "postgresql+asyncpg://u@h/db"


@pytest.mark.parametrize(("text", "key", "reason"), [
    ('[ami]\nport = "five"\n', "ami.port", "valid integer"),
    ("[ami]\nport = 70000\n", "ami.port", "less than or equal to 65535"),
    ("[ami]\nprot = 1\n", "ami.prot", "unknown key"),
    ('[ivr]\ndefault_group = "nobody"\n', "ivr.default_group", "not a routing group"),
    ('[database]\nurl = "sqlite:///x.db"\n', "database.url", "async SQLAlchemy URL"),
    ('[service]\ntimezone = "Mars/Olympus"\n', "service.timezone", "unknown time zone"),
    ('[[topics]]\nname = "a"\ngroups = ["nope"]\n', "topics[0].groups", "not a routing group"),
    ('[[routing.groups]]\nname = "g"\nqueue = "general"\n', "routing.groups.0.queue", "reserved"),
])
def test_bad_values_name_file_key_and_reason(tmp_path: Path, text: str, key: str,
                                             reason: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_config(p, env={})
    msg = str(e.value)
    assert str(p) in msg and f"'{key}'" in msg and reason in msg


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[ami\n"), env={})
    with pytest.raises(ConfigError, match="cannot read file"):
        load_config(tmp_path / "missing.toml", env={})


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ivr.cli", *args], capture_output=True,
                          text=True, timeout=60, check=False)


def test_cli_exit_2_with_one_clear_message(tmp_path: Path) -> None:
    p = write(tmp_path, '[ami]\nport = "five"\n')
    for args in (["config", "check", str(p)], ["--config", str(p), "serve"],
                 ["demo", "--config", str(p)]):
        r = run_cli(*args)
        assert r.returncode == 2, args
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and "ami.port" in lines[0] and str(p) in lines[0]


def test_cli_config_check_ok(tmp_path: Path) -> None:
    r = run_cli("config", "check", str(write(tmp_path, "[ami]\nport = 5038\n")))
    assert r.returncode == 0 and "OK" in r.stdout


def test_speech_listens_in_the_centres_language_with_its_own_model(tmp_path: Path) -> None:
    """A 12345 centre configured as the README says (its locale and a Chinese model) is
    listened to in Chinese; the bundled model is Korean whatever the centre's locale; an
    explicit speech.locale wins."""
    zh = load_config(write(tmp_path, '[service]\nlocale = "zh-CN"\n[speech]\n'
                                     'model_path = "/srv/vosk-model-small-cn-0.22"\n'), env={})
    assert zh.speech.locale == "zh-CN" and zh.ivr.default_menu == "zh-CN"
    bundled = load_config(write(tmp_path, '[service]\nlocale = "zh-CN"\n'), env={})
    assert bundled.speech.locale == "ko-KR"
    assert load_config(env={}).speech.locale == "ko-KR"
    own = load_config(write(tmp_path, '[service]\nlocale = "zh-CN"\n[speech]\n'
                                      'model_path = "/m"\nlocale = "ko-KR"\n'), env={})
    assert own.speech.locale == "ko-KR"


def test_serve_refuses_a_secret_key_the_cases_were_not_written_with(tmp_path: Path) -> None:
    """A second node started with its own secret key would write caller numbers no other
    node can read: `hotline serve` stops at once, naming the file and the key."""
    import asyncio

    from cases import CallStart, CaseStore
    db = tmp_path / "cases.db"
    url = f"sqlite+aiosqlite:///{db}"

    async def first_node_writes() -> None:
        async with CaseStore(url, secret_key="the-centres-own-key") as s:
            await s.open_call_case(CallStart(node="a", call_id="1.1", channel="PJSIP/t-1",
                                             caller_number="01012345678"))

    asyncio.run(first_node_writes())
    p = write(tmp_path, f'[database]\nurl = "{url}"\nsecret_key = "a-key-of-its-own"\n'
                        '[ami]\nport = 1\n')
    r = run_cli("--config", str(p), "serve")
    assert r.returncode == 2, r.stderr
    last = [ln for ln in r.stderr.splitlines() if ln.strip()][-1]
    assert "database.secret_key" in last and str(p) in last and "another key" in last
