"""The websocket hub: each client has its own bounded queue, so a screen that never reads
cannot hold up another; it is disconnected once its queue overflows."""

from __future__ import annotations

import asyncio
import json

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from console.auth import Role
from console.ws import CLOSE_TOO_SLOW, Hub


async def test_a_client_that_never_reads_does_not_delay_the_others() -> None:
    hub = Hub(queue_size=16, send_timeout_s=30.0)

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await hub.serve(request, ws, role=Role.OPERATOR, user=request.query["u"],
                        topics=["t"])
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    # Small receive buffers so the stalled client's TCP window closes after a few MB.
    connector = aiohttp.TCPConnector(force_close=True)
    try:
        async with aiohttp.ClientSession(connector=connector) as s:
            slow = await s.ws_connect(server.make_url("/ws?u=slow"), max_msg_size=0)
            fast = await s.ws_connect(server.make_url("/ws?u=fast"), max_msg_size=0)
            async with asyncio.timeout(10):
                while hub.subscribers("t") < 2:
                    await asyncio.sleep(0.01)
            payload = "x" * 32_000
            received = 0
            n = 0
            # Publish until the slow client has been cut off, and some more after that; the
            # fast one must get every message, each before the next is published.
            async with asyncio.timeout(60):
                while hub.stats.overflowed == 0 or n < 50:
                    n += 1
                    assert hub.publish("t", json.dumps({"i": n, "p": payload})) >= 1
                    msg = await fast.receive()
                    assert json.loads(msg.data)["i"] == n
                    received += 1
                    if n > 5000:
                        raise AssertionError("the slow client was never cut off")
            assert received == n
            assert hub.stats.overflowed == 1
            assert hub.subscribers("t") == 1          # only the fast one is left
            # The slow one finds its stream cut (it may first read what was buffered).
            async with asyncio.timeout(10):
                while True:
                    m = await slow.receive()
                    if m.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                  aiohttp.WSMsgType.ERROR):
                        break
            assert slow.close_code in (CLOSE_TOO_SLOW, None, 1006)
            await fast.close()
    finally:
        await hub.close_all()
        await server.close()


async def test_messages_rendered_per_role_once() -> None:
    hub = Hub(queue_size=4)
    calls: list[Role] = []

    def render(role: Role) -> str:
        calls.append(role)
        return role.value

    assert hub.publish("nobody", render) == 0
    assert calls == []
