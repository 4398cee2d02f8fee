"""A caller waiting in a queue while the service restarts keeps every option of the wait."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ivr.service import HotlineService
from pbxsim import CitizenScript
from tests.menu_harness import menu_config, menu_rig

SEOUL = "120"       # the ko-KR menu's number, whose waiting offers a callback on 5


async def test_the_callback_key_works_for_a_caller_taken_up_after_a_restart(
        tmp_path: Path) -> None:
    """The service restarts while the caller waits in energy (nobody there); the new
    service has not walked the menu with this caller, yet the callback key pressed after
    the restart books the callback (it used to end the call as answered, with no callback
    owed)."""
    async with menu_rig(tmp_path, menu_config(tmp_path)) as r:
        call = await r.sim.place_call(CitizenScript(
            context="hotline", exten=SEOUL, dnid=SEOUL, keys=[("2", 0.2)],
            keys_in_queue=[("5", 60.0)], patience_s=300.0))
        async with asyncio.timeout(20):
            while not any(s.state.queue_joined == "energy"
                          for s in r.service.calls.sessions.values()):
                await asyncio.sleep(0.02)
        await r.service.stop()
        second = HotlineService(r.config)
        await second.start()
        try:
            await second.link.wait_up(timeout=10)
            assert second.calls.resumed == 1
            outcome = await asyncio.wait_for(call.done, 40)
            async with asyncio.timeout(30):
                while second.calls.sessions:
                    await asyncio.sleep(0.05)
            await second.recorder.drain()
            case = await second.store.get_by_call(r.config.service.node, call.ivr_uniqueid)
        finally:
            await second.stop()
        assert not outcome.hung_up_by_citizen           # the service ended the call
        assert case is not None and str(case.outcome) == "callback", case
        assert case.ivr_path[-1] == "wait:callback"
