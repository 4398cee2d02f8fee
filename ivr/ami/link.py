"""The one AMI adapter: connection, login, liveness, actions, events and async AGI.

It replaces what panoramisk 1.4 gets wrong or leaves open (see STYLE.md and ``codec``): AsyncAGIExec completes AGI commands (matched by ``CommandId``, issue #107), pings
are checked and an unanswered ping reconnects, every action has a timeout, actions are never
re-sent after a reconnect (a re-sent Originate would ring a citizen twice), and event
handlers are plain synchronous callbacks run in arrival order (no fire-and-forget tasks).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

from ivr.aio import cancel_and_wait
from ivr.config import AmiConfig

from .agi_commands import AgiCommands
from .agi_result import AgiResult
from .codec import FrameParser, encode_action, event_name, parse_fields
from .errors import (
    AmiActionError,
    AmiDisconnected,
    AmiError,
    AmiNotConnected,
    AmiTimeout,
)
from .events import (
    AmiEvent,
    AsyncAgiEnd,
    AsyncAgiExec,
    AsyncAgiStart,
    Hangup,
    OriginateResponse,
    to_event,
)
from .replies import ActionResult, ListCallback, PendingReplies
from .skiplog import SkipLog

log = logging.getLogger("hotline.ami")

EventListener = Callable[[AmiEvent], None]
# Events the link itself consumes (async AGI results and ends).
_LINK_EVENTS = frozenset({"asyncagistart", "asyncagiexec", "asyncagiend", "hangup",
                          "originateresponse"})
UpHook = Callable[[], Awaitable[None]]


class LinkState(enum.Enum):
    DOWN = "down"
    CONNECTING = "connecting"
    UP = "up"
    AUTH_FAILED = "auth_failed"
    STOPPED = "stopped"


class AuthenticationFailed(Exception):
    pass


class AmiLink:
    """Owns one AMI connection at a time and the tasks that serve it."""

    def __init__(self, config: AmiConfig, *, name: str = "ami") -> None:
        self._cfg = config
        self.name = name
        self.state = LinkState.DOWN
        self._listeners: list[tuple[EventListener, frozenset[str] | None]] = []
        self._wanted: set[str] = set()
        self._want_all = False
        self._up_hooks: list[UpHook] = []
        self._replies = PendingReplies()
        self._agi = AgiCommands()
        self._originates: dict[str, asyncio.Future[OriginateResponse]] = {}
        self._ids = itertools.count(1)
        # AsyncAGIExec events reach every AMI session: a token per link keeps our CommandIDs
        # apart from those of a previous run (commands it left queued on parked calls) and
        # of another service on the same Asterisk.
        self._agi_prefix = f"hotline-agi-{secrets.token_hex(4)}-"
        self._writer: asyncio.StreamWriter | None = None
        self._runner: asyncio.Task[None] | None = None
        # Set by stop(): the run loop ends even if the cancellation itself went astray.
        self._stopping = False
        self._up = asyncio.Event()
        self.connects = 0            # successful logins so far, for tests and metrics
        self.events_received = 0     # every event read, parsed or not
        # Told (channel, command) as each AGI command is sent: metrics and benchmarks.
        self.agi_observers: list[Callable[[str, str], None]] = []
        self.banner: str | None = None
        self.skipped = 0             # malformed messages skipped (metrics)
        self._skip_log = SkipLog(log)
        self._on_malformed = self._malformed_line    # bound once: parse_fields runs per event

    # ---- lifecycle -------------------------------------------------------------------
    def add_listener(self, listener: EventListener,
                     events: Iterable[str] | None = None) -> None:
        """``listener`` gets, in arrival order, the events named in ``events`` (any case),
        or every event when ``events`` is None (events no one names are then parsed too)."""
        names = None if events is None else frozenset(e.lower() for e in events)
        self._listeners.append((listener, names))
        if names is None:
            self._want_all = True
        else:
            self._wanted |= names

    def on_up(self, hook: UpHook) -> None:
        """Run ``hook`` after every successful login (first connect and each reconnect)."""
        self._up_hooks.append(hook)

    def start(self) -> None:
        if self._runner is None:
            self._stopping = False
            self._runner = asyncio.create_task(self._run(), name=f"{self.name}-link")

    async def stop(self) -> None:
        self._stopping = True
        self.state = LinkState.STOPPED
        if self._runner is not None:
            await cancel_and_wait(self._runner)
            self._runner = None
        self.state = LinkState.STOPPED        # the run loop marked it DOWN on its way out
        self._close_writer()
        self._fail_all(AmiNotConnected("link stopped"), agi_too=True)

    async def wait_up(self, timeout: float | None = None) -> None:
        """Wait until the link is logged in and its on-connect hooks have run."""
        async with asyncio.timeout(timeout):     # not wait_for: see ivr.aio
            await self._up.wait()

    @property
    def is_up(self) -> bool:
        return self.state is LinkState.UP

    def drop(self) -> None:
        """Close the current connection (the run loop reconnects): used after a failed ping."""
        self._close_writer()

    # ---- actions ---------------------------------------------------------------------
    async def action(self, action: str, fields: Mapping[str, str | Sequence[str]] | None = None,
                     *, timeout: float | None = None, check: bool = True,
                     on_list: ListCallback | None = None) -> ActionResult:
        """Send one action and await its reply (and its EventList, if it has one).

        ``on_list`` gets the list's events as soon as its last one is read, before any event
        after it: a snapshot (QueueStatus) applied then is never older than the events that
        follow it, as it would be by the time the awaiting task runs."""
        if not self.is_up and action.lower() != "login":
            raise AmiNotConnected(f"AMI link {self.name} is {self.state.value}")
        return await self._send(action, fields or {}, timeout=timeout, check=check,
                                on_list=on_list)

    async def originate(self, fields: Mapping[str, str | Sequence[str]], *,
                        answer_timeout_s: float) -> ActionResult | OriginateResponse:
        """An asynchronous Originate, followed to its end: the refusal (the ActionResult,
        when Asterisk will not even try), or the ``OriginateResponse`` event Asterisk sends
        when the call was answered (Response: Success) or failed (its Reason: 1 hung up,
        3 no answer, 5 busy, 8 congestion, 0 anything else).

        Raises AmiNotConnected when nothing was sent. Once the action is written the call may
        ring whatever happens next: a lost link or no event within ``answer_timeout_s`` (plus
        a margin) raises AmiDisconnected or AmiTimeout, and the caller must not try again as
        if nothing had happened."""
        if not self.is_up:
            raise AmiNotConnected(f"AMI link {self.name} is {self.state.value}")
        action_id = f"hotline-{next(self._ids)}"
        done: asyncio.Future[OriginateResponse] = asyncio.get_running_loop().create_future()
        self._originates[action_id] = done
        try:
            res = await self._send("Originate", {**fields, "Async": "true"}, timeout=None,
                                   check=False, action_id=action_id)
            if not res.success:
                return res
            async with asyncio.timeout(answer_timeout_s + self._cfg.action_timeout_s + 5.0):
                return await done
        except TimeoutError:
            raise AmiTimeout(f"Originate: no OriginateResponse within "
                             f"{answer_timeout_s:.0f}s") from None
        finally:
            self._originates.pop(action_id, None)

    async def _send(self, action: str, fields: Mapping[str, str | Sequence[str]], *,
                    timeout: float | None, check: bool,
                    action_id: str | None = None,
                    on_list: ListCallback | None = None) -> ActionResult:
        writer = self._writer
        if writer is None:
            raise AmiNotConnected(f"AMI link {self.name} has no connection")
        action_id = action_id or f"hotline-{next(self._ids)}"
        fut = self._replies.add(action_id, action, on_list)
        try:
            writer.write(encode_action(action, {"ActionID": action_id, **fields}))
            async with asyncio.timeout(timeout if timeout is not None
                                       else self._cfg.action_timeout_s):
                result = await fut
        except TimeoutError:
            raise AmiTimeout(f"{action}: no reply within "
                             f"{timeout or self._cfg.action_timeout_s:.1f}s") from None
        finally:
            self._replies.forget(action_id)
        if check and not result.success:
            raise AmiActionError(action, result.message)
        return result

    # ---- async AGI -------------------------------------------------------------------
    async def agi(self, channel: str, command: str, *, timeout: float | None) -> AgiResult:
        """Queue an AGI command on a channel parked in ``AGI(agi:async)`` and await its
        AsyncAGIExec. ``timeout=None`` waits as long as the command runs (EXEC Queue).

        ``AgiLeft`` at once for a channel that has left async AGI: Asterisk would still
        take the command ("Added AGI command to queue") and never run it."""
        left = self._agi.left(channel)
        if left is not None:
            raise left
        command_id = f"{self._agi_prefix}{next(self._ids)}"
        fut = self._agi.add(command_id, channel, command)
        for observe in self.agi_observers:
            observe(channel, command)
        try:
            await self.action("AGI", {"Channel": channel, "Command": command,
                                      "CommandID": command_id})
            if timeout is None:
                return await fut
            async with asyncio.timeout(timeout):
                return await fut
        except TimeoutError:
            raise AmiTimeout(f"AGI {command!r} on {channel}: no result in {timeout:.1f}s") from None
        finally:
            self._agi.forget(command_id)

    def agi_pending_channels(self) -> set[str]:
        return self._agi.channels()

    def agi_pending(self, channel: str) -> set[str]:
        """CommandIDs still waiting for their result on ``channel``."""
        return self._agi.on_channel(channel)

    def fail_agi(self, channel: str, exc: Exception, only: set[str] | None = None) -> None:
        """Fail the commands waiting on ``channel`` (all, or those in ``only``): used by the
        call registry once it knows, after a reconnect, that their results cannot arrive."""
        self._agi.fail(channel, exc, only)

    def agi_left(self, channel: str) -> None:
        """``channel`` left async AGI unseen (while the link was down): fail its commands,
        refuse new ones until it enters async AGI again."""
        self._agi.on_left(channel, unseen=True)

    # ---- connection loop -------------------------------------------------------------
    async def _run(self) -> None:
        delay = self._cfg.reconnect_min_s
        auth_reported = False
        while not self._stopping:
            self.state = LinkState.CONNECTING
            try:
                await self._session()
                delay = self._cfg.reconnect_min_s   # a session that logged in resets backoff
                auth_reported = False
            except AuthenticationFailed as e:
                self.state = LinkState.AUTH_FAILED
                if not auth_reported:
                    # One line, never the secret; repeats are quiet until it recovers.
                    log.error("AMI login to %s:%s as %r refused: %s; check ami.username and "
                              "ami.secret; retrying with backoff", self._cfg.host,
                              self._cfg.port, self._cfg.username, e)
                    auth_reported = True
                else:
                    log.debug("AMI login still refused; next try in %.1fs", delay)
            except (OSError, EOFError, AmiError) as e:
                log.warning("AMI link to %s:%s down: %s; reconnecting in %.1fs",
                            self._cfg.host, self._cfg.port, e or type(e).__name__, delay)
            finally:
                self._up.clear()
                if self.state is not LinkState.AUTH_FAILED:
                    self.state = LinkState.DOWN
                self._close_writer()
                self._fail_all(AmiDisconnected("AMI connection lost"), agi_too=False)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._cfg.reconnect_max_s)

    async def _session(self) -> None:
        # Not asyncio.wait_for: on 3.11 a stop() landing as a connection attempt fails was
        # lost there (the refusal was raised instead), and the link went on reconnecting
        # while stop() waited for it for ever.
        async with asyncio.timeout(self._cfg.action_timeout_s):
            reader, writer = await asyncio.open_connection(self._cfg.host, self._cfg.port)
        self._writer = writer
        parser = FrameParser()
        read_task = asyncio.create_task(self._read(reader, parser), name=f"{self.name}-reader")
        ping_task: asyncio.Task[None] | None = None
        try:
            login = await self._send("Login", {"Username": self._cfg.username,
                                               "Secret": self._cfg.secret, "Events": "on"},
                                     timeout=self._cfg.action_timeout_s, check=False)
            if not login.success:
                raise AuthenticationFailed(login.message or "login refused")
            self.banner = parser.banner
            self.state = LinkState.UP
            self.connects += 1
            log.info("AMI link up: %s:%s (%s), login #%d", self._cfg.host, self._cfg.port,
                     parser.banner or "no banner", self.connects)
            for hook in self._up_hooks:
                try:
                    await hook()
                except Exception:
                    log.exception("AMI on-connect hook failed")
            # Only now: whoever waits for the link (a call resuming its step) finds the
            # state the hooks rebuilt (commands lost in the outage failed, queues resynced).
            self._up.set()
            ping_task = asyncio.create_task(self._ping(), name=f"{self.name}-ping")
            done, _ = await asyncio.wait({read_task, ping_task},
                                         return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                t.result()   # re-raise what ended the session
            raise EOFError("connection closed")
        finally:
            for task in (read_task, ping_task):
                if task is not None and not task.done():
                    with contextlib.suppress(Exception):
                        await cancel_and_wait(task)
                elif task is not None and not task.cancelled():
                    task.exception()   # read: the session's own error (a login timeout) says why

    async def _read(self, reader: asyncio.StreamReader, parser: FrameParser) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                raise EOFError("closed by Asterisk")
            for block in parser.feed(data):
                self._on_block(block)

    def _on_block(self, block: bytes) -> None:
        name = event_name(block)
        if name is not None:
            self.events_received += 1
            lname = name.lower()
            # Parse only what someone needs: a listener's event, an EventList item of a
            # pending action, or async AGI bookkeeping.
            if not (self._want_all or lname in self._wanted or lname in _LINK_EVENTS
                    or (self._replies.collecting and b"ActionID" in block)):
                return
        self._handle(parse_fields(block, self._on_malformed))

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(self._cfg.ping_interval_s)
            try:
                reply = await self._send("Ping", {}, timeout=self._cfg.action_timeout_s,
                                         check=False)
            except AmiTimeout:
                raise AmiTimeout(f"ping unanswered for {self._cfg.action_timeout_s:.1f}s") from None
            if not reply.success:
                raise AmiActionError("Ping", reply.message or "bad ping reply")

    # ---- dispatch --------------------------------------------------------------------
    def _malformed_line(self, line: str) -> None:
        self._skip_log.warn("AMI: skipping malformed line %r", line)

    def _handle(self, f: dict[str, str]) -> None:
        if "event" not in f and "response" not in f:
            self.skipped += 1
            self._skip_log.warn("AMI: skipping a message with neither Event nor Response: %r",
                                dict(list(f.items())[:4]))
            return
        if self._replies.on_message(f):
            return
        try:
            event = to_event(f)
        except Exception:  # noqa: BLE001 - malformed input, whatever breaks: skip the message
            self.skipped += 1
            self._skip_log.warn("AMI: skipping an event that could not be read: %r",
                                f.get("event"), exc_info=True)
            return
        if isinstance(event, AsyncAgiStart | AsyncAgiExec | AsyncAgiEnd | Hangup):
            self._agi.on_event(event)
        elif isinstance(event, OriginateResponse):
            o = self._originates.get(event.action_id)
            if o is not None and not o.done():
                o.set_result(event)
        lname = event.name.lower()
        for listener, names in self._listeners:
            if names is not None and lname not in names:
                continue
            try:
                listener(event)
            except Exception:
                log.exception("AMI event listener failed on %s", event.name)

    def _fail_all(self, exc: Exception, *, agi_too: bool) -> None:
        self._replies.fail_all(exc)
        # An Originate's end is announced once, on the link it was sent on.
        for o in list(self._originates.values()):
            if not o.done():
                o.set_exception(exc)
        if agi_too:
            self._agi.fail_all(exc)

    def _close_writer(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
            self._writer = None
