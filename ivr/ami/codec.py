"""AMI wire format: bytes in, messages as dicts out; actions out as bytes.

Why not panoramisk's own ``AMIProtocol.data_received``: it decodes each TCP chunk separately
(as ASCII by default), which drops UTF-8 caller names and splits multi-byte characters across
chunks, and its case-insensitive ``Message`` costs more than the rest of the adapter
together. Here framing happens on bytes, decoding on whole messages, keys are lower-cased
once (so ``CommandId``/``CommandID`` match), and an event nobody listens to is never parsed:
on a busy Asterisk most events (Newexten, VarSet, DeviceStateChange…) are such.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import unquote

log = logging.getLogger(__name__)

EOL = b"\r\n"
END = b"\r\n\r\n"
BANNER_PREFIX = b"Asterisk Call Manager/"
# A peer that never ends a message must not grow our memory without limit.
MAX_MESSAGE_BYTES = 1 << 20
# Fields Asterisk URL-encodes (AsyncAGIStart Env, AsyncAGIExec Result).
URL_ENCODED_KEYS = frozenset({"env", "result"})


def _log_malformed(line: str) -> None:
    log.warning("AMI: skipping malformed line %r", line)


def parse_fields(block: bytes, on_malformed: Callable[[str], None] = _log_malformed
                 ) -> dict[str, str]:
    """One message's headers as a dict with lower-case keys (the first of repeated keys;
    ``Output`` lines of a Command reply are joined). Malformed lines are skipped and handed
    (cut to 120 characters) to ``on_malformed``, which logs them by default."""
    fields: dict[str, str] = {}
    for line in block.decode("utf-8", errors="replace").split("\r\n"):
        key, sep, value = line.partition(":")
        if not sep or not key or " " in key:
            if line:
                on_malformed(line[:120])
            continue
        key = key.lower()
        value = value.removeprefix(" ")
        if key in URL_ENCODED_KEYS:
            value = unquote(value)
        if key in fields:
            if key == "output":
                fields[key] += "\n" + value
            continue
        fields[key] = value
    return fields


def event_name(block: bytes) -> str | None:
    """The event name, read without parsing the rest (most events are not wanted)."""
    if not block.startswith(b"Event:"):
        return None
    end = block.find(b"\r\n")
    return block[6:end if end >= 0 else len(block)].strip().decode("utf-8", "replace")


class FrameParser:
    """Incremental splitter: feed any chunking of the stream, get whole messages as bytes."""

    def __init__(self) -> None:
        self._buf = b""
        self.banner: str | None = None

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf + data if self._buf else data
        if self.banner is None and buf.startswith(BANNER_PREFIX[: len(buf)]):
            nl = buf.find(EOL)
            if nl < 0:
                self._buf = buf
                return []
            self.banner = buf[:nl].decode("utf-8", errors="replace")
            buf = buf[nl + 2:]
        parts = buf.split(END)
        rest = parts.pop()
        if len(rest) > MAX_MESSAGE_BYTES:
            log.error("AMI: discarding %d bytes with no message end", len(rest))
            rest = b""
        self._buf = rest
        # Tolerate stray blank lines between messages.
        return [p.strip(b"\r\n") for p in parts if p.strip(b"\r\n")]


def encode_action(action: str, fields: Mapping[str, str | Sequence[str]]) -> bytes:
    """``Action`` first, then the fields in the caller's order; CR/LF in values is refused
    because it would let a caller-controlled string inject AMI headers."""
    lines = [f"Action: {action}"]
    for key, value in fields.items():
        values = [value] if isinstance(value, str) else list(value)
        for v in values:
            v = str(v)
            if "\r" in v or "\n" in v or "\r" in key or "\n" in key:
                raise ValueError(f"AMI field {key!r} contains a line break")
            lines.append(f"{key}: {v}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
