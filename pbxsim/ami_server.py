"""The AMI TCP server: one session per client, every session gets every event.

A reply to an action is written before the events the action caused, as in Asterisk where
events travel through the stasis bus while the response is written directly: events published
while an action runs are held and flushed right after its reply.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import TYPE_CHECKING

from . import queue_actions  # noqa: F401  (registers the queue actions)
from .actions import ActionContext, dispatch
from .ami_codec import Fields, MessageReader, encode, error

if TYPE_CHECKING:
    from .core import PbxCore

log = logging.getLogger("pbxsim.ami")

BANNER = b"Asterisk Call Manager/13.0.0\r\n"
# A client that stops reading is dropped rather than buffered without bound (Asterisk drops
# sessions whose writes time out).
MAX_UNREAD = 16 * 1024 * 1024


def _addr(sockname: object) -> str:
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        return f"IPV4/TCP/{sockname[0]}/{sockname[1]}"
    return "IPV4/TCP/0.0.0.0/0"


class AmiSession:
    def __init__(self, core: PbxCore, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, session_id: int) -> None:
        self._core = core
        self._reader = reader
        self._writer = writer
        self.authenticated = False
        self.username = ""
        self.challenge = ""
        self.session_id = f"0x{session_id:x}"
        self.local_address = _addr(writer.get_extra_info("sockname"))
        self.remote_address = _addr(writer.get_extra_info("peername"))
        self.started = core.clock.now()
        self.close_after_reply = False
        self._events_on = True
        self._classes: set[str] | None = None
        self._held: list[Fields] | None = None
        self._closed = False

    # -- Session protocol (actions.py) ---------------------------------------------------------
    def set_event_mask(self, mask: str) -> bool:
        low = mask.strip().lower()
        if low in ("off", "no", "false", "0", "n"):
            self._events_on = False
        elif low in ("on", "yes", "true", "1", "y", "all", ""):
            self._events_on, self._classes = True, None
        else:
            self._events_on, self._classes = True, {c.strip() for c in low.split(",")}
        return self._events_on

    def wants(self, privilege: str) -> bool:
        """Whether this session receives events of the given class."""
        return self._events_on and (self._classes is None or privilege in self._classes
                                    or "all" in self._classes)

    def release_events(self) -> None:
        held, self._held = self._held, None
        for fields in held or []:
            self._send(fields)

    # -- output --------------------------------------------------------------------------------
    def _send(self, fields: Fields) -> None:
        if self._closed or self._writer.is_closing():
            return
        if self._writer.transport.get_write_buffer_size() > MAX_UNREAD:
            log.warning("AMI client %s does not read its events; dropping it",
                        self.remote_address)
            self.abort()
            return
        self._writer.write(encode(fields))

    def deliver(self, fields: Fields) -> None:
        """EventBus sink."""
        if not self.authenticated or not self._events_on:
            return
        if self._classes is not None:
            privilege = next((v for k, v in fields if k == "Privilege"), "")
            if not ({p.strip() for p in privilege.lower().split(",")} & self._classes):
                return
        if self._held is not None:
            self._held.append(fields)
        else:
            self._send(fields)

    def abort(self) -> None:
        """Drop the connection at once (fault injection, shutdown)."""
        self._closed = True
        self._writer.transport.abort()

    # -- input loop ----------------------------------------------------------------------------
    async def run(self) -> None:
        self._core.bus.subscribe(self.deliver)
        log.info("AMI client connected from %s", self.remote_address)
        try:
            self._writer.write(BANNER)
            reader = MessageReader(self._reader)
            while not self._closed:
                msg = await reader.read()
                if msg is None:
                    break
                self._held = []
                try:
                    replies = await dispatch(ActionContext(self._core, self), msg)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("AMI action %r failed", msg.action)
                    replies = [error(msg, "Internal error")]
                for reply in replies:
                    self._send(reply)
                self.release_events()
                if self.close_after_reply:
                    break
                if self._writer.transport.get_write_buffer_size() > 1 << 20:
                    await self._writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._core.bus.unsubscribe(self.deliver)
            self._closed = True
            self._writer.close()
            log.info("AMI client %s disconnected", self.remote_address)


class AmiServer:
    def __init__(self, core: PbxCore) -> None:
        self._core = core
        self._server: asyncio.base_events.Server | None = None
        self._sessions: dict[AmiSession, asyncio.Task[None]] = {}
        # SessionID looks like the address of Asterisk's mansession struct
        self._session_ids = itertools.count(0x7F6F6C000EE0, 0x1A0)
        self.refusing = False      # a network outage: connections are closed at once

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._on_client, host, port)
        sock = self._server.sockets[0]
        bound = int(sock.getsockname()[1])
        log.info("AMI listening on %s:%d", host, bound)
        return bound

    async def _on_client(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.close()
            return
        session = AmiSession(self._core, reader, writer, next(self._session_ids))
        task = asyncio.current_task()
        assert task is not None
        self._sessions[session] = task
        try:
            await session.run()
        except asyncio.CancelledError:
            # stop() cancels sessions; ending normally keeps asyncio's stream callback from
            # logging the cancellation as an error (Python 3.11 calls task.exception()).
            pass
        finally:
            self._sessions.pop(session, None)

    @property
    def client_count(self) -> int:
        return len(self._sessions)

    def drop_all(self) -> int:
        sessions = list(self._sessions)
        for s in sessions:
            s.abort()
        log.warning("dropped %d AMI connections", len(sessions))
        return len(sessions)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = list(self._sessions.values())
        for s in list(self._sessions):
            s.abort()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
