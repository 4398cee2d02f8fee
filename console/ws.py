"""Websocket fan-out: every client has its own bounded queue and its own sender task.

Publishing never awaits a socket: it serialises once and ``put_nowait``s into each
subscriber's queue, so the AMI event handler that publishes a screen pop returns at once and a
screen that stopped reading (a frozen tab, a dead Wi-Fi link) cannot delay anyone else. A
client whose queue overflows, or whose socket does not take a message within
``send_timeout_s``, is disconnected: what it shows is stale by then, and the page reconnects
and asks for the current state afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from aiohttp import WSCloseCode, WSMsgType, web

from console.auth import Role
from ivr.aio import cancel_and_wait

log = logging.getLogger("hotline.web.ws")

Message = str | Callable[[Role], str]   # a callable renders the message for a role (masking)
CLOSE_TOO_SLOW = 4008                    # application close code: fell behind, reconnect
CLOSE_SESSION_ENDED = 4001               # logged out or expired: log in again


@dataclass(eq=False, slots=True)
class Client:
    id: int
    ws: web.WebSocketResponse
    role: Role
    user: str
    queue: asyncio.Queue[str]
    topics: set[str] = field(default_factory=set)
    transport: asyncio.BaseTransport | None = None
    sender: asyncio.Task[None] | None = None
    closing: bool = False
    sent: int = 0
    sid: str = ""                          # the login session the socket was opened in


@dataclass(slots=True)
class HubStats:
    published: int = 0         # messages handed to the hub
    delivered: int = 0         # messages written to a socket
    overflowed: int = 0        # clients disconnected for falling behind


class Hub:
    def __init__(self, *, queue_size: int = 256, send_timeout_s: float = 5.0,
                 alive: Callable[[str], bool] | None = None) -> None:
        self._queue_size = queue_size
        self._send_timeout_s = send_timeout_s
        self._clients: set[Client] = set()
        self._by_topic: dict[str, set[Client]] = {}
        self._ids = itertools.count(1)
        self._closers: set[asyncio.Task[None]] = set()
        self._alive = alive            # is login session ``sid`` still valid?
        self.stats = HubStats()

    # ---- clients -----------------------------------------------------------------------
    @property
    def clients(self) -> int:
        return len(self._clients)

    def subscribers(self, topic: str) -> int:
        return len(self._by_topic.get(topic, ()))

    async def serve(self, request: web.Request, ws: web.WebSocketResponse, *, role: Role,
                    user: str, topics: Iterable[str],
                    on_message: Callable[[Client, str], None] | None = None,
                    hello: Iterable[str] = (), sid: str = "") -> None:
        """Run one prepared websocket until it closes: its sender in its own task, its
        incoming messages (if any) handed to ``on_message``. ``hello`` goes out first.

        ``sid``: the login session the socket belongs to. A socket outlives no logout
        (``end_session``) nor expiry (the hub's ``alive``, asked before each message it is
        sent): screen pops carry callers' details."""
        client = Client(next(self._ids), ws, role, user, asyncio.Queue(self._queue_size),
                        transport=request.transport, sid=sid)
        self._clients.add(client)
        for text in hello:
            client.queue.put_nowait(text)
        for t in topics:
            self.subscribe(client, t)
        client.sender = asyncio.create_task(self._send_loop(client), name=f"ws-send-{client.id}")
        try:
            async for frame in ws:
                if frame.type == WSMsgType.TEXT and on_message is not None:
                    on_message(client, frame.data)
                elif frame.type == WSMsgType.ERROR:
                    break
        finally:
            self._forget(client)
            with contextlib.suppress(Exception):
                await cancel_and_wait(client.sender)

    def subscribe(self, client: Client, topic: str) -> None:
        client.topics.add(topic)
        self._by_topic.setdefault(topic, set()).add(client)

    def unsubscribe(self, client: Client, topic: str) -> None:
        client.topics.discard(topic)
        subs = self._by_topic.get(topic)
        if subs is not None:
            subs.discard(client)
            if not subs:
                del self._by_topic[topic]

    def _forget(self, client: Client) -> None:
        self._clients.discard(client)
        for t in list(client.topics):
            self.unsubscribe(client, t)

    # ---- publishing --------------------------------------------------------------------
    def publish(self, topic: str, message: Message) -> int:
        """Queue ``message`` for every subscriber of ``topic``; returns how many got it.
        Never blocks: a full queue disconnects that one client."""
        subs = self._by_topic.get(topic)
        if not subs:
            return 0
        self.stats.published += 1
        rendered: dict[Role, str] = {}
        n = 0
        for c in list(subs):
            if c.closing:
                continue
            if isinstance(message, str):
                text = message
            else:
                text = rendered.get(c.role) or rendered.setdefault(c.role, message(c.role))
            try:
                c.queue.put_nowait(text)
                n += 1
            except asyncio.QueueFull:
                self._drop(c, "fell behind")
        return n

    def send_to(self, client: Client, text: str) -> None:
        try:
            client.queue.put_nowait(text)
        except asyncio.QueueFull:
            self._drop(client, "fell behind")

    def end_session(self, sid: str) -> None:
        """Close the sockets opened in login session ``sid`` (its user logged out)."""
        for c in list(self._clients):
            if c.sid and c.sid == sid:
                self._drop(c, "logged out", code=CLOSE_SESSION_ENDED)

    async def _send_loop(self, c: Client) -> None:
        while True:
            text = await c.queue.get()
            if c.sid and self._alive is not None and not self._alive(c.sid):
                self._drop(c, "session expired", code=CLOSE_SESSION_ENDED)
                return
            try:
                async with asyncio.timeout(self._send_timeout_s):
                    await c.ws.send_str(text)
            except TimeoutError:
                self._drop(c, "socket not draining")
                return
            except (ConnectionError, RuntimeError):
                return     # closed under us: serve() cleans up
            c.sent += 1
            self.stats.delivered += 1

    def _drop(self, c: Client, why: str, code: int = 0) -> None:
        if c.closing:
            return
        c.closing = True
        if not code:
            self.stats.overflowed += 1
        log.warning("websocket client %d (%s) disconnected: %s", c.id, c.user, why)
        self._forget(c)
        if c.sender is not None and asyncio.current_task() is not c.sender:
            c.sender.cancel()
        task = asyncio.create_task(self._close(c, code or CLOSE_TOO_SLOW),
                                   name=f"ws-close-{c.id}")
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)

    async def _close(self, c: Client, code: int = CLOSE_TOO_SLOW) -> None:
        try:
            async with asyncio.timeout(1.0):
                await c.ws.close(code=code, message=b"session ended" if code ==
                                 CLOSE_SESSION_ENDED else b"too slow")
        except (TimeoutError, ConnectionError, RuntimeError):
            pass
        finally:
            # A peer that does not read never acknowledges the close: cut the connection.
            if c.transport is not None and not c.transport.is_closing():
                c.transport.abort()  # type: ignore[attr-defined]

    async def close_all(self) -> None:
        for c in list(self._clients):
            c.closing = True
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await c.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server stopping")
        if self._closers:
            await asyncio.gather(*self._closers, return_exceptions=True)
