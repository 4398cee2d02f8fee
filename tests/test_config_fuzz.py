"""The config loader on arbitrary input: a valid config or one ConfigError naming the file,
never a crash with a traceback (an operator editing /etc/hotline.toml at 3 a.m. must be told
what is wrong, in one line per problem)."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.config import ConfigError, HotlineConfig, _defaults, load_config

_DEFAULTS = _defaults()
# Every (section, key) of the built-in defaults: mutations land where the loader looks.
_KEYS = [(sec, key) for sec, body in _DEFAULTS.items() if isinstance(body, dict)
         for key in body]
_SECTIONS = sorted(_DEFAULTS)

_scalar = st.one_of(
    st.integers(min_value=-2**63, max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.booleans(),
    st.text(max_size=30),
)
_value = st.recursive(
    _scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.from_regex(r"[a-z_]{1,10}", fullmatch=True),
                                            inner, max_size=4)),
    max_leaves=8,
)


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else "0.0"
    if isinstance(v, str):
        return json.dumps(v)              # a JSON string is a valid TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return "{" + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + "}"


_edit = st.one_of(
    st.tuples(st.sampled_from(_KEYS), _value),                                  # bad value
    st.tuples(st.tuples(st.sampled_from(_SECTIONS),
                        st.from_regex(r"[a-z_]{1,12}", fullmatch=True)), _value),  # new key
)


def _check(text: bytes | str, env: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "hotline.toml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        try:
            cfg = load_config(path, env=env)
        except ConfigError as e:
            msg = str(e)
            assert msg.startswith(str(path)), msg
            assert "Traceback" not in msg
        else:
            assert isinstance(cfg, HotlineConfig)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=st.lists(_edit, min_size=1, max_size=4), with_env=st.booleans())
def test_mutated_configs_load_or_say_why(edits: list[tuple[tuple[str, str], Any]],
                                         with_env: bool) -> None:
    by_section: dict[str, list[str]] = {}
    for (sec, key), v in edits:
        by_section.setdefault(sec, []).append(f"{key} = {_toml(v)}")
    text = "".join(f"[{sec}]\n" + "\n".join(dict.fromkeys(lines)) + "\n"
                   for sec, lines in by_section.items())
    env = {"HOTLINE_DATABASE_URL": "sqlite+aiosqlite:///x.db"} if with_env else {}
    _check(text, env)


@settings(max_examples=100, deadline=None)
@given(top=st.dictionaries(st.sampled_from(_SECTIONS), _scalar, min_size=1, max_size=3),
       with_env=st.booleans())
def test_a_section_that_is_not_a_table(top: dict[str, Any], with_env: bool) -> None:
    text = "".join(f"{k} = {_toml(v)}\n" for k, v in top.items())
    env = {"HOTLINE_DATABASE_URL": "sqlite+aiosqlite:///x.db"} if with_env else {}
    _check(text, env)


@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=200))
def test_random_bytes(raw: bytes) -> None:
    _check(raw, {})
