"""AMI wire format: CRLF-terminated ``Key: Value`` lines, a blank line ends a message.

Keys are matched case-insensitively, as Asterisk does (``CommandID`` in an action,
``CommandId`` in the AsyncAGIExec event).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

Fields = list[tuple[str, str]]

MAX_LINE = 8192
MAX_HEADERS = 128  # Asterisk's AST_MAX_MANHEADERS


@dataclass
class AmiMessage:
    """One message received from a client; lookups ignore the case of keys."""

    pairs: list[tuple[str, str]] = field(default_factory=list)

    def get(self, key: str, default: str = "") -> str:
        low = key.lower()
        for k, v in self.pairs:
            if k.lower() == low:
                return v
        return default

    def get_all(self, key: str) -> list[str]:
        low = key.lower()
        return [v for k, v in self.pairs if k.lower() == low]

    def has(self, key: str) -> bool:
        low = key.lower()
        return any(k.lower() == low for k, _ in self.pairs)

    @property
    def action(self) -> str:
        return self.get("Action").strip()

    @property
    def action_id(self) -> str:
        return self.get("ActionID")


def parse_lines(lines: Sequence[str]) -> AmiMessage:
    pairs: list[tuple[str, str]] = []
    for line in lines:
        if ":" not in line:
            continue  # Asterisk silently ignores lines that are not headers
        key, _, value = line.partition(":")
        key = key.strip()
        if not key:
            continue
        if len(pairs) < MAX_HEADERS:
            pairs.append((key, value.lstrip(" ")))
    return AmiMessage(pairs)


def _clean(value: str) -> str:
    # A value can never span lines on the wire.
    return value.replace("\r", " ").replace("\n", " ")


def encode(fields: Iterable[tuple[str, str]]) -> bytes:
    out = "".join(f"{k}: {_clean(v)}\r\n" for k, v in fields)
    return (out + "\r\n").encode("utf-8")


class MessageReader:
    """Reads client messages from a stream; tolerant of bare LF and of garbage lines."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    async def read(self) -> AmiMessage | None:
        """The next non-empty message, or None at end of stream."""
        lines: list[str] = []
        while True:
            try:
                raw = await self._reader.readuntil(b"\n")
            except asyncio.IncompleteReadError:
                return None  # a partial message at EOF is dropped, like Asterisk does
            except asyncio.LimitOverrunError as exc:
                # An absurdly long line: skip it rather than buffer without bound.
                await self._reader.readexactly(exc.consumed)
                continue
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if len(line) > MAX_LINE:
                line = line[:MAX_LINE]
            if line == "":
                if lines:
                    return parse_lines(lines)
                continue
            lines.append(line)


def action_id_field(action_id: str) -> Fields:
    return [("ActionID", action_id)] if action_id else []


def success(msg: AmiMessage, message: str | None = None, extra: Fields | None = None) -> Fields:
    out: Fields = [("Response", "Success"), *action_id_field(msg.action_id)]
    if message is not None:
        out.append(("Message", message))
    out.extend(extra or [])
    return out


def error(msg: AmiMessage, message: str) -> Fields:
    return [("Response", "Error"), *action_id_field(msg.action_id), ("Message", message)]


def list_start(msg: AmiMessage, message: str) -> Fields:
    return [
        ("Response", "Success"),
        *action_id_field(msg.action_id),
        ("EventList", "start"),
        ("Message", message),
    ]


def list_complete(msg: AmiMessage, event: str, count: int) -> Fields:
    return [
        ("Event", event),
        *action_id_field(msg.action_id),
        ("EventList", "Complete"),
        ("ListItems", str(count)),
    ]
