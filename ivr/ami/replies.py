"""Actions sent and not yet answered, by ActionID.

Each action waits for its Response; one whose reply opens an EventList ("EventList: start")
also collects the list's items, up to the event that completes it. Asterisk interleaves
other events with a list, so only items carrying the action's ActionID belong to it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .events import AmiEvent, to_event

log = logging.getLogger("hotline.ami")

# Gets a list's events as its last one is read, before any event that follows it.
ListCallback = Callable[[tuple[AmiEvent, ...]], None]


@dataclass(frozen=True, slots=True)
class ActionResult:
    """A reply: the response's lower-cased fields and, for EventList actions, the list."""
    fields: Mapping[str, str]
    events: tuple[AmiEvent, ...] = ()

    @property
    def success(self) -> bool:
        return self.fields.get("response", "").lower() in ("success", "goodbye", "follows")

    @property
    def message(self) -> str:
        return self.fields.get("message", "")


@dataclass(slots=True)
class _Pending:
    action: str
    future: asyncio.Future[ActionResult]
    response: Mapping[str, str] | None = None      # set while its list is being collected
    events: list[AmiEvent] = field(default_factory=list)
    on_list: ListCallback | None = None


class PendingReplies:
    def __init__(self) -> None:
        self._pending: dict[str, _Pending] = {}
        self._lists = 0               # EventList replies being collected

    @property
    def collecting(self) -> bool:
        """A list is being collected: events with an ActionID may be its items."""
        return self._lists > 0

    def add(self, action_id: str, action: str,
            on_list: ListCallback | None = None) -> asyncio.Future[ActionResult]:
        fut: asyncio.Future[ActionResult] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = _Pending(action, fut, on_list=on_list)
        return fut

    def forget(self, action_id: str) -> None:
        """The sender stopped waiting (answered, timed out, or the link went)."""
        p = self._pending.pop(action_id, None)
        if p is not None and p.response is not None:
            self._lists -= 1          # a list cut short by timeout or disconnect

    def fail_all(self, exc: Exception) -> None:
        for p in list(self._pending.values()):
            if not p.future.done():
                p.future.set_exception(exc)

    def on_message(self, f: Mapping[str, str]) -> bool:
        """Take a reply, or an item of a list being collected; False for any other event."""
        action_id = f.get("actionid")
        pending = self._pending.get(action_id) if action_id else None
        if "event" not in f:          # a Response
            if pending is None:
                log.debug("AMI: reply for unknown ActionID %r", action_id)
            elif f.get("eventlist", "").lower() == "start":
                pending.response = f         # the list follows, ended by ...Complete
                self._lists += 1
            elif not pending.future.done():
                pending.future.set_result(ActionResult(f))
            return True
        if pending is None or pending.response is None:
            return False
        if f.get("eventlist", "").lower() != "complete":
            pending.events.append(to_event(f))
            return True
        response, pending.response = pending.response, None
        self._lists -= 1
        if not pending.future.done():
            events = tuple(pending.events)
            if pending.on_list is not None:
                try:
                    pending.on_list(events)
                except Exception:
                    log.exception("AMI: %s list handler failed", pending.action)
            pending.future.set_result(ActionResult(response, events))
        return True
