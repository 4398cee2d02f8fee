"""The 回访 survey call through pbxsim: placed by the service or by `hotline cases survey`
beside it (through whichever of the centre's Asterisks is up), answered by the citizen with a
1-5 key, the score recorded and an unsatisfied case reopened."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from cases import Action
from pbxsim import CitizenScript
from tests.cases_fixtures import DEPARTMENTS, closed_port
from tests.menu_harness import menu_config, menu_rig, open_case


# ---- the callback survey (回访) -----------------------------------------------------------
@pytest.mark.parametrize(("key", "status", "prompt", "via"), [
    ("5", "revisited", "survey_thanks", "service"),
    ("2", "processing", "survey_sorry", "cli"),        # unsatisfied: reopened
    # The CLI's first Asterisk ([ami]) is down: the call goes out through the second.
    ("4", "revisited", "survey_thanks", "cli-first-down"),
])
async def test_survey_call_records_the_score(tmp_path: Path, key: str, status: str,
                                             prompt: str, via: str) -> None:
    cfg = menu_config(tmp_path)
    cfg = cfg.model_copy(update={"ivr": cfg.ivr.model_copy(update={
        "survey": cfg.ivr.survey.model_copy(update={"dial": "Local/{number}@citizens"})})})
    async with menu_rig(tmp_path, cfg) as r:
        store = r.service.store
        await store.load_departments(DEPARTMENTS)
        number = await open_case(r, "handled-call", "13900002222")
        steps: list[tuple[Action, dict[str, Any]]] = [
            (Action.DISPATCH, {"department": "310101"}), (Action.START, {}),
            (Action.REPLY, {"reason": "pipe repaired"})]
        for action, kw in steps:
            await store.transition(number, action, actor="agent-1", **kw)
        answered = r.sim.expect_call("13900002222", "citizens",
                                     CitizenScript(keys=[(key, 0.3)]))
        if via == "service":
            assert await r.service.surveys.call(number)
        else:
            # `hotline cases survey` beside the running service, which answers the call.
            conf = tmp_path / "hotline.toml"
            live = f'host = "127.0.0.1"\nport = {r.config.ami.port}'
            if via == "cli-first-down":
                live = (f'port = {closed_port()}\n[[ami.nodes]]\nname = "second"\n'
                        f'{live}')
            conf.write_text(f"""
[ami]
secret = "{r.config.ami.secret}"
{live}
[database]
url = "{r.config.database.url}"
[ivr.survey]
dial = "Local/{{number}}@citizens"
""", encoding="utf-8")
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "ivr.cli", "cases", "survey", number, "--config",
                str(conf), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode == 0, err.decode()[-2000:]
            assert f"survey call for case {number}: answered" in out.decode()
            # Claimed like the scheduler's calls, so the scheduler does not ring again.
            assert any(e.kind == "survey_call" and e.actor == "cli"
                       for e in await store.timeline(number))
        handle = await asyncio.wait_for(answered, 10)
        await asyncio.wait_for(handle.done, 30)
        await r.settle()
        ch = handle.ivr_channel
        assert r.agi.prompts(ch) == [r.prompt("survey_intro"), r.prompt("survey_ask"),
                                     r.prompt(prompt)]
        case = await store.get(number)
        assert case is not None and str(case.status) == status
        assert case.satisfaction == int(key)
        # A survey call opens no case of its own.
        assert await store.get_by_call(r.config.service.node, handle.ivr_uniqueid) is None
