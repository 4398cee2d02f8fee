"""One service, two Asterisk nodes, one PostgreSQL case store: calls are kept apart by node.

Two pbxsims number their channels alike, as two real Asterisks started together do, so the
same Uniqueid arrives from both; each call must still get its own case, queue and agent.
"""

# ruff: noqa: F811  (fixtures imported by name)

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import NoReturn

import pytest

from ivr.ami.link import AmiLink, LinkState
from ivr.config import AmiNodeConfig
from ivr.service import HotlineService
from pbxsim import AgentSpec, CitizenScript, PbxSim, SimConfig
from tests.callpath_fixtures import QUEUES, service_config
from tests.cases_fixtures import pg_url  # noqa: F401
from tests.conftest import Deadline


async def test_two_nodes_share_one_store_and_keep_their_calls_apart(
        tmp_path: Path, pg_url: str, deadline: Deadline) -> None:
    # A hang here once lasted 8 minutes in CI: fail with every task's stack instead.
    async with deadline(180, "the two-node test"):
        await _two_nodes(tmp_path, pg_url, deadline)


async def _two_nodes(tmp_path: Path, pg_url: str, deadline: Deadline) -> None:
    run = uuid.uuid4().hex[:8]          # the shared database: keep runs apart
    # Both Asterisks number their calls from the same second: the Uniqueids clash.
    sims = [PbxSim(SimConfig(host="127.0.0.1", port=0, speed=10.0, queues=QUEUES,
                             uniqueid_epoch=1_796_000_000)) for _ in range(2)]
    for sim in sims:
        await sim.start()
    cfg = service_config(tmp_path, sims[0].ami_port, db_url=pg_url)
    cfg = cfg.model_copy(update={
        "service": cfg.service.model_copy(update={"node": f"a-{run}"}),
        "ami": cfg.ami.model_copy(update={"nodes": [AmiNodeConfig(
            name=f"b-{run}", host="127.0.0.1", port=sims[1].ami_port)]}),
    })
    service = HotlineService(cfg)
    await service.start()
    try:
        assert [n.name for n in service.nodes] == [f"a-{run}", f"b-{run}"]
        # The admin console tunes service.router.policy: both nodes route and park with it.
        assert {id(n.router.policy) for n in service.nodes} == {id(service.router.policy)}
        assert {id(n.rebalancer._policy) for n in service.nodes} == {id(service.router.policy)}
        for node in service.nodes:
            await node.link.wait_up(timeout=10)
        agents = []
        for i, (sim, node) in enumerate(zip(sims, service.nodes, strict=True)):
            interface = f"Local/{3000 + i}@agents/n"
            sim.add_agent(AgentSpec(interface=interface, name=f"agent-{node.name}",
                                    answer_delay_s=0.3, talk_time_s=2.0))
            await node.link.action("QueueAdd", {"Queue": "water", "Interface": interface,
                                                "MemberName": f"agent-{node.name}"})
            agents.append(f"agent-{node.name}")
        calls = [await sim.place_call(CitizenScript(caller_num=f"0101234000{i}",
                                                    keys=[("1", 0.2)]))
                 for i, sim in enumerate(sims)]
        outcomes = await asyncio.wait_for(asyncio.gather(*(c.done for c in calls)), 60)
        # Each node's caller reached that node's agent.
        assert [o.answered_by for o in outcomes] == agents
        assert calls[0].ivr_uniqueid == calls[1].ivr_uniqueid   # the clash to survive
        async with asyncio.timeout(30):
            while any(n.calls.sessions for n in service.nodes):
                await asyncio.sleep(0.05)
            await service.recorder.drain()
        cases = [await service.store.get_by_call(node.name, call.ivr_uniqueid)
                 for node, call in zip(service.nodes, calls, strict=True)]
        assert all(c is not None for c in cases)
        assert cases[0].number != cases[1].number  # type: ignore[union-attr]
        assert [c.agent for c in cases] == agents  # type: ignore[union-attr]
        assert [c.caller_masked[-2:] for c in cases] == ["00", "01"]  # type: ignore[union-attr]
        # One node's link going down leaves the other serving.
        await sims[0].stop()
        late = await sims[1].place_call(CitizenScript(keys=[("1", 0.2)]))
        assert (await asyncio.wait_for(late.done, 60)).answered_by == agents[1]
    finally:
        async with deadline(60, "stopping the service and the simulators"):
            await service.stop()
            for sim in sims:
                await sim.stop()


async def test_a_link_stopped_as_its_reconnect_is_refused_stops(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The node whose Asterisk went away above is stopped while it reconnects. A stop()
    landing in the loop turn a connection attempt is refused in must end the link: on 3.11,
    asyncio.wait_for lost that cancellation, the link went on reconnecting and stop() (and
    with it the service's) waited for ever."""
    link = AmiLink(service_config(tmp_path, 1).ami, name="ami-gone")
    stopping: list[asyncio.Task[None]] = []

    async def refused(host: str, port: int, **_: object) -> NoReturn:
        assert not stopping, "the link tried to reconnect after stop()"
        # Scheduled now, so stop() runs before the link has seen this attempt fail.
        stopping.append(asyncio.create_task(link.stop()))
        raise ConnectionRefusedError(f"{host}:{port}")

    monkeypatch.setattr(asyncio, "open_connection", refused)
    link.start()
    while not stopping:
        await asyncio.sleep(0)
    await stopping[0]
    assert link.state is LinkState.STOPPED
