"""Async AGI commands on one channel, phrased as the IVR uses them.

Quoting follows res_agi: arguments with spaces are double-quoted; prompts are file names
without extension, as Asterisk resolves them per channel language.
"""

from __future__ import annotations

from ivr.ami.agi_result import AgiResult
from ivr.ami.errors import AgiCommandError, AgiHangup
from ivr.ami.link import AmiLink

# A command that plays a prompt returns when the prompt ends, and a greeting read by a
# text-to-speech voice can run for a minute (the default Mandarin one: about 60 s). Such
# commands wait this long for Asterisk, on top of any input timeout; the command timeout
# (the AMI action timeout, seconds) is for commands that return at once.
PLAYBACK_WAIT_S = 300.0


def _quote(arg: str) -> str:
    if arg == "" or any(c in arg for c in ' "\t'):
        return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return arg


class AgiChannel:
    def __init__(self, link: AmiLink, channel: str, *, command_timeout_s: float) -> None:
        self.link = link
        self.channel = channel
        self._timeout = command_timeout_s

    async def command(self, command: str, *, timeout: float | None = -1.0) -> AgiResult:
        t = self._timeout if timeout == -1.0 else timeout
        result = await self.link.agi(self.channel, command, timeout=t)
        if result.code in (510, 520):
            raise AgiCommandError(f"{command!r}: {result.raw.strip()}")
        if result.code == 511:
            raise AgiHangup(f"{self.channel}: dead channel")
        return result

    async def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> str | None:
        """Play ``prompt`` (a key stops it) and collect up to ``max_digits`` keys.
        Returns the digits, or None on timeout without input. Raises AgiHangup."""
        r = await self.command(f"GET DATA {prompt} {timeout_ms} {max_digits}",
                               timeout=PLAYBACK_WAIT_S + timeout_ms / 1000 * (max_digits + 1))
        if r.result == "-1":
            raise AgiHangup(f"{self.channel} hung up during GET DATA")
        return r.result or None

    async def stream_file(self, prompt: str, escape_digits: str = "") -> str | None:
        r = await self.command(f"STREAM FILE {prompt} {_quote(escape_digits)}",
                               timeout=PLAYBACK_WAIT_S)
        if r.result == "-1":
            raise AgiHangup(f"{self.channel} hung up during STREAM FILE")
        return chr(int(r.result)) if r.result not in ("", "0") and r.result.isdigit() else None

    async def say_digits(self, digits: str, escape_digits: str = "") -> None:
        r = await self.command(f"SAY DIGITS {digits} {_quote(escape_digits)}",
                               timeout=PLAYBACK_WAIT_S)
        if r.result == "-1":
            raise AgiHangup(f"{self.channel} hung up during SAY DIGITS")

    async def set_variable(self, name: str, value: str) -> None:
        await self.command(f"SET VARIABLE {name} {_quote(value)}")

    async def get_variable(self, name: str) -> str | None:
        r = await self.command(f"GET VARIABLE {name}")
        return r.data if r.result == "1" else None

    async def get_full_variable(self, expression: str, *,
                                timeout: float | None = -1.0) -> str | None:
        """``expression`` evaluated on the channel (``${VAR}``, functions, several at once)."""
        r = await self.command(f"GET FULL VARIABLE {_quote(expression)}", timeout=timeout)
        return r.data if r.result == "1" else None

    async def record_file(self, path: str, fmt: str, escape_digits: str, max_ms: int,
                          silence_s: int) -> AgiResult:
        """Record on the Asterisk host (``path`` without extension, relative to its
        spool or absolute) after a beep, until an escape digit, ``silence_s`` of silence
        or ``max_ms``. Raises AgiHangup, and AgiCommandError where RECORD FILE is missing."""
        r = await self.command(
            f"RECORD FILE {_quote(path)} {fmt} {_quote(escape_digits)} {max_ms} BEEP "
            f"s={silence_s}", timeout=self._timeout + max_ms / 1000 + 5)
        if r.result == "-1":
            raise AgiHangup(f"{self.channel} hung up during RECORD FILE")
        return r

    async def exec(self, app: str, args: str, *, timeout: float | None = -1.0) -> AgiResult:
        return await self.command(f"EXEC {app} {_quote(args)}", timeout=timeout)

    async def hangup(self) -> None:
        try:
            await self.command("HANGUP")
        except AgiHangup:
            pass
