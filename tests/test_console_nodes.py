"""The console with two Asterisk nodes: an operator whose phone is on the second node gets
the screen pop of that node's call, with that node's case, even though the first node has a
call with the same Uniqueid (two Asterisks started together number channels alike); their
pause goes to the Asterisk their phone is on. A member name used on both nodes gets no pops
(they would show one node's callers to the other's operator) and cannot sign in."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from console.app import WebConsole
from console.settings import ConsoleSettings
from ivr.config import AmiNodeConfig
from ivr.service import HotlineService
from pbxsim import AgentSpec, PbxSim, SimConfig
from tests.callpath_fixtures import QUEUES, service_config
from tests.test_console_fixtures import caller, headers, login, operator_feed, users, wait_for


@dataclass
class TwoNodes:
    sims: list[PbxSim]
    service: HotlineService
    base: str

    async def add_agent(self, i: int, ext: int, member: str) -> None:
        interface = f"Local/{ext}@agents/n"
        self.sims[i].add_agent(AgentSpec(interface=interface, name=member,
                                         answer_delay_s=0.5, talk_time_s=2.0))
        node = self.service.nodes[i]
        await node.link.action("QueueAdd", {"Queue": "water", "Interface": interface,
                                            "MemberName": member})
        await wait_for(lambda: member in node.live.members.get("water", {}))


@asynccontextmanager
async def two_nodes(tmp_path: Path) -> AsyncIterator[TwoNodes]:
    sims = [PbxSim(SimConfig(host="127.0.0.1", port=0, speed=10.0, queues=QUEUES))
            for _ in range(2)]
    for sim in sims:
        await sim.start()
    cfg = service_config(tmp_path, sims[0].ami_port)
    cfg = cfg.model_copy(update={"ami": cfg.ami.model_copy(update={"nodes": [AmiNodeConfig(
        name="second", host="127.0.0.1", port=sims[1].ami_port)]})})
    service = HotlineService(cfg)
    await service.start()
    web = WebConsole(service, cfg.web.model_copy(update={"host": "127.0.0.1", "port": 0}),
                     users=users(), settings=ConsoleSettings(
                         audit_log=str(tmp_path / "audit.jsonl"), board_interval_s=0.1))
    await web.start()
    try:
        for node in service.nodes:
            await node.link.wait_up(timeout=10)
        yield TwoNodes(sims, service, f"http://127.0.0.1:{web.port}")
    finally:
        await web.stop()
        await service.stop()
        for sim in sims:
            await sim.stop()


def _client(base: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(base, cookie_jar=aiohttp.CookieJar(unsafe=True))


async def test_second_node_operator_gets_their_pop_and_their_case(tmp_path: Path) -> None:
    async with two_nodes(tmp_path) as t:
        sims, service, base = t.sims, t.service, t.base
        first, second = service.nodes
        # agent2001 on the first Asterisk, agent1001 (the operator below) on the second.
        await t.add_agent(0, 2001, "agent2001")
        await t.add_agent(1, 1001, "agent1001")
        async with _client(base) as c:
            csrf = await login(c, "agent1001", "pw")
            async with operator_feed(c, base) as msgs:
                # One call on each Asterisk at the same moment: the same Uniqueid on both.
                call_a, call_b = await asyncio.gather(
                    sims[0].place_call(caller("1", "13800000001")),
                    sims[1].place_call(caller("1", "13900000002")))
                assert call_b.ivr_uniqueid == call_a.ivr_uniqueid       # the clash to survive
                await wait_for(lambda: any(m.get("type") == "pop_detail"
                                           and m.get("case") for m in msgs), 20)
                pops = [m for m in msgs if m.get("type") == "pop"]
                assert pops and pops[0]["caller"] == "139****0002"
                detail = next(m for m in msgs if m.get("type") == "pop_detail" and m.get("case"))
                case_b = await service.store.get_by_call("second", call_b.ivr_uniqueid)
                assert case_b is not None
                assert detail["case"]["number"] == case_b.number  # type: ignore[index]
                await wait_for(lambda: not any(n.calls.sessions for n in service.nodes), 30)
                await service.recorder.drain()
                case_a = await service.store.get_by_call(first.name, call_a.ivr_uniqueid)
                assert case_a is not None and case_a.number != case_b.number

                assert all(m.get("caller") != "138****0001" for m in msgs)   # not node 1's caller
                # Pausing reaches the Asterisk the operator's phone is on.
                await asyncio.wait_for(asyncio.gather(call_a.done, call_b.done), 30)
                async with c.post("/api/operator/pause", json={"paused": True, "reason": "break"},
                                  headers=headers(csrf)) as resp:
                    assert resp.status == 200, await resp.text()
                await wait_for(lambda: second.live.members["water"]["agent1001"].paused)
                snapshot = sims[1].queue_snapshot()["water"]
                assert [m.paused for m in snapshot.members] == [True]


async def test_a_member_name_on_both_nodes_gets_no_pops_and_cannot_sign_in(
        tmp_path: Path) -> None:
    async with two_nodes(tmp_path) as t:
        await t.add_agent(0, 1001, "agent1001")
        await t.add_agent(1, 1001, "agent1001")
        async with _client(t.base) as c:
            csrf = await login(c, "agent1001", "pw")
            async with operator_feed(c, t.base) as msgs:
                async with c.post("/api/operator/signin", json={"member": "agent1001"},
                                  headers=headers(csrf)) as resp:
                    assert resp.status == 409
                    assert "several Asterisk nodes" in (await resp.json())["error"]
                call = await t.sims[1].place_call(caller("1", "13900000003"))
                outcome = await asyncio.wait_for(call.done, 30)
                assert outcome.answered_by == "agent1001"          # the call itself goes on
                assert not any(m.get("type") in ("pop", "pop_detail") for m in msgs)
                assert "13900000003" not in json.dumps(msgs)
