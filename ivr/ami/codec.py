"""AMI wire format: bytes in, panoramisk ``Message`` objects out; actions out as bytes.

Why not panoramisk's own ``AMIProtocol.data_received``: it decodes each TCP chunk separately
(as ASCII by default), which drops UTF-8 caller names and splits multi-byte characters across
chunks. Here framing happens on bytes and decoding on whole messages. Parsing still yields
panoramisk's case-insensitive ``Message`` so keys such as ``CommandId``/``CommandID`` match.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from urllib.parse import unquote

from panoramisk.message import Message

log = logging.getLogger(__name__)

EOL = b"\r\n"
END = b"\r\n\r\n"
BANNER_PREFIX = b"Asterisk Call Manager/"
# A peer that never ends a message must not grow our memory without limit.
MAX_MESSAGE_BYTES = 1 << 20
# Fields Asterisk URL-encodes (AsyncAGIStart Env, AsyncAGIExec Result).
URL_ENCODED_KEYS = frozenset({"env", "result"})


def _parse_block(block: bytes) -> Message | None:
    text = block.decode("utf-8", errors="replace")
    headers: dict[str, str | list[str]] = {}
    for line in text.split("\r\n"):
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep or not key or " " in key.strip():
            log.warning("AMI: skipping malformed line %r", line[:120])
            continue
        key = key.strip()
        value = value[1:] if value.startswith(" ") else value
        if key.lower() in URL_ENCODED_KEYS:
            value = unquote(value)
        if key in headers:
            prev = headers[key]
            headers[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            headers[key] = value
    lowered = {k.lower() for k in headers}
    if "event" not in lowered and "response" not in lowered:
        log.warning("AMI: skipping a message with neither Event nor Response: %r", text[:200])
        return None
    return Message(headers)


class FrameParser:
    """Incremental splitter: feed any chunking of the stream, get whole messages."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.banner: str | None = None

    def feed(self, data: bytes) -> Iterator[Message]:
        self._buf += data
        if self.banner is None and self._buf.startswith(BANNER_PREFIX[: len(self._buf)]):
            nl = self._buf.find(EOL)
            if nl < 0:
                return
            self.banner = self._buf[:nl].decode("utf-8", errors="replace")
            del self._buf[: nl + 2]
        while True:
            end = self._buf.find(END)
            if end < 0:
                if len(self._buf) > MAX_MESSAGE_BYTES:
                    log.error("AMI: discarding %d bytes with no message end", len(self._buf))
                    self._buf.clear()
                return
            block = bytes(self._buf[:end])
            del self._buf[: end + 4]
            # Tolerate stray blank lines between messages.
            block = block.strip(b"\r\n")
            if not block:
                continue
            msg = _parse_block(block)
            if msg is not None:
                yield msg


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


def fields_of(msg: Message) -> dict[str, str]:
    """A plain dict with lower-case keys (first value of repeated keys)."""
    out: dict[str, str] = {}
    for k, v in msg.items():
        if k == "content":  # panoramisk's body slot, never an AMI header here
            continue
        out[k.lower()] = v[0] if isinstance(v, list) else v
    return out
