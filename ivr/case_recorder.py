"""Case writes off the call's critical path, in order per call, surviving store outages.

A call must never wait on, or fail because of, the database. The session hands writes to
this recorder; each is journaled on local disk (``CaseJournal``), then a few worker tasks
apply them, each call always to the same worker so its writes stay in order. A failing store
is retried with backoff for as long as it takes; the call goes on meanwhile, and writes still
unapplied when the service stops are replayed from the journal at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic_core import to_jsonable_python

from cases.errors import CaseNotFound, CaseStoreUnavailable
from cases.schemas import CallStart, CaseView
from ivr.case_journal import CaseJournal, CaseWrite

log = logging.getLogger("hotline.cases")


class CaseStoreLike(Protocol):
    async def open_call_case(self, call: CallStart) -> CaseView: ...
    async def update_call_case(self, node: str, call_id: str, **changes: Any) -> CaseView: ...
    async def finish_call(self, node: str, call_id: str, outcome: str, ended_at: datetime,
                          wait_s: float | None = None, talk_s: float | None = None) -> CaseView: ...


class OpenableStore(CaseStoreLike, Protocol):
    """A store the recorder makes, opens and closes itself (on its writer thread)."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...


class _Shard:
    """Two FIFOs, urgent first, with join() like asyncio.Queue.

    An update that finds the same call's previous write still waiting, and that write an
    update too, is merged into it: when the database falls behind, a call's changes land in
    fewer transactions instead of a growing backlog."""

    def __init__(self) -> None:
        self._urgent: deque[_Write] = deque()
        self._rest: deque[_Write] = deque()
        self._last: dict[tuple[str, str], _Write] = {}   # each call's newest waiting write
        self._ready = asyncio.Event()
        self._unfinished = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.merged = 0

    @property
    def size(self) -> int:
        return len(self._urgent) + len(self._rest)

    def put(self, w: _Write, urgent: bool) -> _Write:
        """Queue ``w``; returns the write that will carry it (``w`` or the one it joined)."""
        key = (w.cw.node, w.cw.call_id)
        last = self._last.get(key)
        if (not urgent and last is not None and last.cw.kind == "update"
                and w.cw.kind == "update"):
            last.cw = CaseWrite("update", last.cw.node, last.cw.call_id,
                                {**last.cw.data, **w.cw.data})
            last.seqs.extend(w.seqs)
            self.merged += 1
            return last
        (self._urgent if urgent else self._rest).append(w)
        self._last[key] = w
        self._unfinished += 1
        self._idle.clear()
        self._ready.set()
        return w

    async def get(self) -> _Write:
        while not (self._urgent or self._rest):
            self._ready.clear()
            await self._ready.wait()
        w = self._urgent.popleft() if self._urgent else self._rest.popleft()
        key = (w.cw.node, w.cw.call_id)
        if self._last.get(key) is w:      # taken: nothing may be merged into it any more
            del self._last[key]
        return w

    def task_done(self) -> None:
        self._unfinished -= 1
        if self._unfinished == 0:
            self._idle.set()

    async def join(self) -> None:
        await self._idle.wait()


@dataclass(slots=True)
class _Write:
    cw: CaseWrite
    seqs: list[int]               # its journal entries (several once merged)
    done: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())

    @property
    def what(self) -> str:
        return f"{self.cw.kind} {self.cw.node}/{self.cw.call_id}"


class CaseRecorder:
    def __init__(self, store: CaseStoreLike | None = None, *,
                 store_factory: Callable[[], OpenableStore] | None = None,
                 journal: CaseJournal | None = None, workers: int = 4,
                 retry_max_s: float = 5.0, give_up_after_s: float = 60.0) -> None:
        """Give ``store`` to write on the caller's event loop (tests, tools), or
        ``store_factory`` to write on a thread of the recorder's own, with a store made and
        opened there: ORM work then never queues ahead of a caller's AMI events.

        ``journal``: where writes wait durably; None keeps them in memory only.
        ``give_up_after_s``: how long a write failing with anything but the store being
        unavailable is retried (an unavailable store is waited for until the service stops;
        the journal keeps what is left for the next start)."""
        if (store is None) == (store_factory is None):
            raise ValueError("give either store or store_factory")
        self.store = store
        self._factory = store_factory
        self._writer_store: CaseStoreLike | None = store
        self._owned: OpenableStore | None = None     # made by store_factory: closed by us
        self.journal = journal
        # Per worker: new cases first (a caller's routing waits on them), then the rest.
        self._queues: list[_Shard] = [_Shard() for _ in range(workers)]
        self._tasks: list[asyncio.Task[None]] = []
        self._retry_max_s = retry_max_s
        self._give_up_after_s = give_up_after_s
        self._main: asyncio.AbstractEventLoop | None = None
        self._writer: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.errors = 0          # writes that failed at least once
        self.lost = 0            # writes given up on (logged with what they carried)
        self.replayed = 0        # writes from an earlier run's journal

    def start(self) -> None:
        """Start the writers; first in line are the journal's writes from an earlier run."""
        self._main = asyncio.get_running_loop()
        replay = self.journal.open() if self.journal is not None else []
        self.replayed = len(replay)
        if self._factory is None:
            self._writer = self._main
            self._begin(replay)
        else:
            started = threading.Event()
            self._thread = threading.Thread(target=self._thread_main, args=(replay, started),
                                            name="case-writer", daemon=True)
            self._thread.start()
            started.wait()
        if self.journal is not None:
            self.journal.start()

    def _thread_main(self, replay: list[tuple[int, CaseWrite]], started: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._writer = loop
        loop.call_soon(self._begin, replay)
        loop.call_soon(started.set)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _begin(self, replay: list[tuple[int, CaseWrite]]) -> None:
        # On the writer loop.
        for seq, w in replay:
            self._enqueue(w, seq)
        if self._factory is not None:
            self._tasks.append(asyncio.create_task(self._open_store(), name="case-writer-open"))
        else:
            self._start_workers()

    async def _open_store(self) -> None:
        assert self._factory is not None
        delay = 0.5
        while True:
            try:
                store = self._factory()
                await store.open()
                break
            except Exception as e:  # noqa: BLE001 - whatever it is, calls go on
                # Writes wait in the journal meanwhile; the task must not die with the error.
                (log.warning if isinstance(e, CaseStoreUnavailable) else log.error)(
                    "case writer: store cannot be opened (%s); retrying in %.0fs", e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        self._writer_store = self._owned = store
        self._start_workers()

    def _start_workers(self) -> None:
        self._tasks += [asyncio.create_task(self._work(q), name=f"case-writer-{i}")
                        for i, q in enumerate(self._queues)]

    def _on_writer(self, fn: Callable[[], None]) -> None:
        assert self._writer is not None, "recorder not started"
        if self._writer is self._main:
            fn()
        else:
            self._writer.call_soon_threadsafe(fn)

    async def drain(self) -> None:
        """Wait until every write handed in so far has been applied (or given up)."""
        if self._writer is None or self._writer is self._main:
            await asyncio.gather(*(q.join() for q in self._queues))
            return
        # Behind whatever this loop handed over before: call_soon_threadsafe keeps order.
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(
            self._join_all(), self._writer))

    async def _join_all(self) -> None:
        await asyncio.gather(*(q.join() for q in self._queues))

    @property
    def backlog(self) -> int:
        return sum(q.size for q in self._queues)

    async def stop(self) -> None:
        # With a journal, what is left waits on disk: a stopping service need not linger.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2 if self.journal is not None else 10):
                await self.drain()
        if self._writer is not None and self._writer is not self._main:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(
                self._shutdown(), self._writer))
            self._writer.call_soon_threadsafe(self._writer.stop)
            if self._thread is not None:
                await asyncio.to_thread(self._thread.join)
            self._writer = None
        else:
            await self._cancel_workers()
        if self.journal is not None:
            if self.journal.unapplied:
                log.warning("%d case write(s) kept in %s for the next start",
                            self.journal.unapplied, self.journal.path)
            await self.journal.close()

    async def _cancel_workers(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _shutdown(self) -> None:
        # On the writer loop: its store is closed where it was opened.
        await self._cancel_workers()
        if self._owned is not None:
            with contextlib.suppress(Exception):
                await self._owned.close()
            self._owned = None

    def _submit(self, cw: CaseWrite, *, urgent: bool = False,
                then: Callable[[asyncio.Future[Any]], None] | None = None) -> None:
        """Journal ``cw`` here, queue it on the writer loop; ``then`` gets its outcome
        (called on the writer loop)."""
        seq = self.journal.append(cw) if self.journal is not None else None

        def enqueue() -> None:
            w = self._enqueue(cw, seq, urgent=urgent)
            if then is not None:
                w.done.add_done_callback(then)
        self._on_writer(enqueue)

    def _enqueue(self, cw: CaseWrite, seq: int | None, *, urgent: bool = False) -> _Write:
        w = _Write(cw, [] if seq is None else [seq])
        # Failures are logged by the worker; mark them seen for writes nobody awaits.
        w.done.add_done_callback(lambda f: f.cancelled() or f.exception())
        # One call, one worker: its writes stay in order (its open is always first).
        return self._queues[zlib.crc32(cw.call_id.encode()) % len(self._queues)].put(w, urgent)

    @property
    def merged(self) -> int:
        """Updates that joined a waiting update of the same call."""
        return sum(q.merged for q in self._queues)

    async def _apply(self, w: CaseWrite) -> CaseView:
        store = self._writer_store
        assert store is not None
        d = w.data
        if w.kind == "open":
            return await store.open_call_case(CallStart.model_validate(d))
        if w.kind == "update":
            return await store.update_call_case(w.node, w.call_id, **d)
        if w.kind == "score":
            from ivr.menus.survey import SurveyStore, apply_score
            if not isinstance(store, SurveyStore):
                raise ValueError("this case store takes no survey scores")
            done = await apply_score(store, str(d["case"]), int(d["score"]))
            log.info("survey of case %s: score %s, %s", d["case"], d["score"], done)
            view: CaseView = await store.get(str(d["case"]))
            return view
        return await store.finish_call(
            w.node, w.call_id, d["outcome"], datetime.fromisoformat(d["ended_at"]),
            wait_s=d.get("wait_s"), talk_s=d.get("talk_s"))

    # ---- what the call session uses ------------------------------------------------
    async def open(self, call: CallStart, *, wait_s: float) -> CaseView | None:
        """Create (or find, when resuming) the call's case; None if the store is slow or
        down, in which case the write still completes in the background."""
        if call.started_at is None:
            # Fixed now: a write replayed later must not date the call to its replay.
            call = call.model_copy(update={"started_at": datetime.now(UTC)})
        main = asyncio.get_running_loop()
        result: asyncio.Future[CaseView] = main.create_future()

        def settle(done: asyncio.Future[Any]) -> None:
            if done.cancelled() or result.done():
                return
            exc = done.exception()
            if exc is not None:
                result.set_exception(exc)
            else:
                result.set_result(done.result())

        def relay(done: asyncio.Future[Any]) -> None:
            main.call_soon_threadsafe(settle, done)
        self._submit(CaseWrite("open", call.node, call.call_id, call.model_dump(mode="json")),
                     urgent=True, then=relay)
        result.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            async with asyncio.timeout(wait_s):
                return await asyncio.shield(result)
        except TimeoutError:
            log.warning("case for call %s not written yet; the call goes on", call.call_id)
            return None

    def update(self, node: str, call_id: str, **changes: Any) -> None:
        self._submit(CaseWrite("update", node, call_id, to_jsonable_python(changes)))

    def score(self, node: str, call_id: str, case: str, score: int) -> None:
        """A survey call's score for ``case``: applied like the call writes (journaled,
        retried through an outage)."""
        self._submit(CaseWrite("score", node, call_id, {"case": case, "score": score}))

    def finish(self, node: str, call_id: str, outcome: str, ended_at: datetime,
               wait_s: float | None, talk_s: float | None) -> None:
        self._submit(CaseWrite("finish", node, call_id, {
            "outcome": str(outcome), "ended_at": ended_at.isoformat(), "wait_s": wait_s,
            "talk_s": talk_s}))

    async def _work(self, q: _Shard) -> None:
        loop = asyncio.get_running_loop()
        while True:
            w = await q.get()
            try:
                delay, started, attempt = 0.1, loop.time(), 0
                while True:
                    try:
                        result = await self._apply(w.cw)
                    except (ValueError, CaseNotFound) as e:
                        # A bad value, or an update whose case was rejected: a bug to fix,
                        # not an outage to wait out (and retrying would hold up the others).
                        log.error("case write %s rejected: %s", w.what, e)
                        self._gave_up(w, e)
                        break
                    except Exception as e:  # noqa: BLE001 - outage or bug: retried, then given up
                        self.errors += 1
                        # An outage is waited out for as long as it lasts; anything else
                        # for ``give_up_after_s``.
                        if (not isinstance(e, CaseStoreUnavailable)
                                and loop.time() - started > self._give_up_after_s):
                            log.error("case write %s given up after %.0fs: %r", w.what,
                                      loop.time() - started, e)
                            self._gave_up(w, e)
                            break
                        # One warning per write; an outage of minutes must not flood the log.
                        (log.warning if attempt == 0 else log.debug)(
                            "case write %s failed (%s); retrying every %.0fs at most", w.what,
                            e, self._retry_max_s)
                        attempt += 1
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, self._retry_max_s)
                    else:
                        self._applied(w)
                        if not w.done.done():
                            w.done.set_result(result)
                        break
            finally:
                q.task_done()

    def _gave_up(self, w: _Write, e: Exception) -> None:
        self.lost += 1
        self._applied(w)       # a write that can never succeed must not be replayed forever
        if not w.done.done():
            w.done.set_exception(e)

    def _applied(self, w: _Write) -> None:
        if self.journal is not None:
            for seq in w.seqs:
                self.journal.applied(seq)
