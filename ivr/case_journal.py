"""A durable local journal of case writes, so that a database outage loses nothing.

Every write the call path hands to the recorder is appended here first (one JSON line) and
marked applied once the case store has it. Writes still unapplied when the service stops,
crashes or is killed are replayed at the next start. The store's call-path writes are
idempotent (open finds the existing case, update skips equal values, the first finish wins),
so a write replayed after it did reach the database changes nothing.

Lines are flushed to the OS at once (a killed process loses nothing) and fsync'ed in the
background every ``sync_interval_s`` (a power cut loses at most that much).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from ivr.aio import cancel_and_wait

log = logging.getLogger("hotline.cases")

# "score": a 回访 survey's score for an earlier case (``data``: case, score), written
# through the journal like the call's own facts so an outage cannot lose a complaint.
WriteKind = Literal["open", "update", "finish", "score"]
# Compact once every write is applied and the file has grown past this.
COMPACT_BYTES = 4 * 1024 * 1024


class JournalInUse(RuntimeError):
    """Another hotline process holds this journal: two writers would replay each other's
    writes, so the second one must not start."""


@dataclass(frozen=True, slots=True)
class CaseWrite:
    """One call-path write, in JSON-ready form so it can be journaled and replayed."""

    kind: WriteKind
    node: str
    call_id: str
    data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "node": self.node, "call_id": self.call_id,
                "data": self.data}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CaseWrite:
        kind = d["kind"]
        if kind not in ("open", "update", "finish", "score"):
            raise ValueError(f"unknown write kind {kind!r}")
        node, call_id, data = d["node"], d["call_id"], d["data"]
        if not (isinstance(node, str) and isinstance(call_id, str) and isinstance(data, dict)):
            # A malformed journal line, as above: the reader skips what raises ValueError.
            raise ValueError("node, call_id and data: string, string, object")  # noqa: TRY004
        return cls(kind, node, call_id, data)


class CaseJournal:
    def __init__(self, path: Path, *, sync_interval_s: float = 0.5) -> None:
        self.path = path
        self._sync_interval_s = sync_interval_s
        self._file: IO[str] | None = None
        self._seq = 0
        self._unapplied: set[int] = set()
        self._dirty = False
        self._syncer: asyncio.Task[None] | None = None
        # Appended on the event loop, marked applied on the recorder's writer thread.
        self._lock = threading.Lock()

    @property
    def unapplied(self) -> int:
        with self._lock:
            return len(self._unapplied)

    def open(self) -> list[tuple[int, CaseWrite]]:
        """Lock and read the journal; returns the writes still to apply, oldest first."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until close()
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            raise JournalInUse(
                f"case journal {self.path} is in use by another hotline process; give each "
                "service its own [database] journal") from None
        f.seek(0)
        pending = self._read(f)
        # Rewrite with only what is pending, so the file does not grow across restarts.
        f.seek(0)
        f.truncate()
        self._seq = 0
        for _, w in pending:
            self._seq += 1
            f.write(json.dumps({"n": self._seq, "w": w.to_json()}, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
        self._file = f
        renumbered = [(i + 1, w) for i, (_, w) in enumerate(pending)]
        self._unapplied = {n for n, _ in renumbered}
        if renumbered:
            log.warning("case journal %s: %d case write(s) from an earlier run to replay",
                        self.path, len(renumbered))
        return renumbered

    def _read(self, f: IO[str]) -> list[tuple[int, CaseWrite]]:
        writes: dict[int, CaseWrite] = {}
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                if "ok" in rec:
                    writes.pop(int(rec["ok"]), None)
                else:
                    writes[int(rec["n"])] = CaseWrite.from_json(rec["w"])
            except (ValueError, KeyError, TypeError) as e:
                # A line cut short by a crash: everything before it is still good.
                log.error("case journal %s line %d unreadable (%s); skipped", self.path,
                          lineno, e)
        return sorted(writes.items())

    def start(self) -> None:
        self._syncer = asyncio.create_task(self._sync_loop(), name="case-journal-sync")

    def append(self, w: CaseWrite) -> int:
        with self._lock:
            self._seq += 1
            self._line({"n": self._seq, "w": w.to_json()})
            self._unapplied.add(self._seq)
            return self._seq

    def applied(self, n: int) -> None:
        with self._lock:
            self._unapplied.discard(n)
            self._line({"ok": n})
            if (not self._unapplied and self._file is not None
                    and self._file.tell() > COMPACT_BYTES):
                self._file.truncate(0)
                self._file.seek(0)

    def _line(self, rec: dict[str, Any]) -> None:
        if self._file is None:
            raise RuntimeError("case journal not open")
        self._file.write(json.dumps(rec, ensure_ascii=False) + "\n")
        self._file.flush()
        self._dirty = True

    async def _sync_loop(self) -> None:
        while True:
            await asyncio.sleep(self._sync_interval_s)
            if self._dirty and self._file is not None:
                self._dirty = False
                await asyncio.to_thread(os.fsync, self._file.fileno())

    async def close(self) -> None:
        if self._syncer is not None:
            await cancel_and_wait(self._syncer)   # not suppress(): see ivr.aio
            self._syncer = None
        with self._lock:
            if self._file is not None:
                self._file.flush()
                os.fsync(self._file.fileno())
                self._file.close()   # releases the lock
                self._file = None
