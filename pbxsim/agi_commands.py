"""The AGI commands pbxsim executes, with res_agi's result lines and exec events."""

from __future__ import annotations

import logging
import wave
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from . import lifecycle, media
from .agi import AgiCommand, url_encode
from .apps import find_app
from .channels import UP, Channel, Notice
from .media import DTMF_DIGITS
from .variables import expand, get_variable, set_callerid, set_variable

if TYPE_CHECKING:
    from .core import PbxCore

log = logging.getLogger("pbxsim.agi")

RESULT_SUCCESS, RESULT_SHOWUSAGE, RESULT_FAILURE = 0, 1, 2
STATUS_TEXT = {RESULT_SUCCESS: "Success", RESULT_SHOWUSAGE: "Usage", RESULT_FAILURE: "Failure"}


@dataclass(frozen=True)
class Reply:
    line: str
    code: int = RESULT_SUCCESS  # the handler's return, as res_agi maps it to AGIExecEnd Result
    brk: bool = False


Handler = Callable[["PbxCore", Channel, list[str]], Awaitable[Reply]]


def parse_args(text: str) -> list[str]:
    """res_agi's parse_args: whitespace separated, double quotes group, backslash escapes."""
    argv: list[str] = []
    cur: list[str] = []
    in_arg = quoted = escaped = False
    for ch in text:
        if escaped:
            cur.append(ch)
            escaped = False
            in_arg = True
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
            in_arg = True
        elif ch in " \t\r\n" and not quoted:
            if in_arg:
                argv.append("".join(cur))
                cur, in_arg = [], False
        else:
            cur.append(ch)
            in_arg = True
    if in_arg:
        argv.append("".join(cur))
    return argv


def usage(text: str) -> Reply:
    return Reply(f"520-Invalid command syntax.  Proper usage follows:\nUsage: {text}\n"
                 "520 End of proper usage.\n", RESULT_SHOWUSAGE)


def ok(result: str | int, extra: str = "") -> Reply:
    return Reply(f"200 result={result}{extra}\n")


async def collect_digits(core: PbxCore, chan: Channel, prompt: str, timeout_ms: float,
                         maxdigits: int) -> tuple[str, Literal["OK", "TIMEOUT", "HANGUP"]]:
    """ast_app_getdata: prompt with barge-in, then digits until max, '#' or timeout."""
    first_to, next_to = (timeout_ms / 1000,) * 2 if timeout_ms > 0 else (10.0, 5.0)
    digits = ""
    if prompt:
        played = await media.play(core, chan, prompt, escape=DTMF_DIGITS)
        if played.stopped:
            return "", "HANGUP"
        if played.digit == "#":
            return "", "OK"
        if played.digit is not None:
            digits = played.digit
    while len(digits) < maxdigits:
        digit, stopped = await lifecycle.read_digit(core, chan, next_to if digits else first_to)
        if stopped:
            return digits, "HANGUP"
        if digit is None:
            return digits, "TIMEOUT"
        if digit == "#":
            break
        digits += digit
    return digits, "OK"


def _int(argv: list[str], i: int, default: int) -> int:
    try:
        return int(argv[i]) if len(argv) > i and argv[i].strip() else default
    except ValueError:
        return default


async def h_answer(core: PbxCore, chan: Channel, argv: list[str]) -> Reply:
    if chan.state != UP:
        lifecycle.answer(core, chan)
    return ok(0)


async def h_break(core: PbxCore, chan: Channel, argv: list[str]) -> Reply:
    return Reply("200 result=0\n", brk=True)


async def h_channel_status(core: PbxCore, chan: Channel, argv: list[str]) -> Reply:
    target = core.channels.get(argv[2]) if len(argv) > 2 else chan
    return ok(target.state if target is not None else -1)


async def h_exec(core: PbxCore, chan: Channel, argv: list[str]) -> Reply:
    if len(argv) < 2:
        return usage("EXEC <application> <options>")
    app = find_app(argv[1])
    if app is None:
        log.warning("%s: EXEC %s: application not simulated", chan.name, argv[1])
        return Reply("200 result=-2\n", -2)
    data = expand(core, chan, argv[2] if len(argv) > 2 else "")
    # pbx_exec publishes the application in the channel snapshot and does not restore it
    chan.appl, chan.data = argv[1], data
    res = await app(core, chan, data)
    return Reply(f"200 result={res}\n", res)


async def h_get_data(core: PbxCore, chan: Channel, argv: list[str]) -> Reply:
    if len(argv) < 3:
        return usage("GET DATA <file to be streamed> [timeout] [maxdigits]")
    if core.sounds.missing(argv[2]):
        # ast_app_getdata_full: the prompt cannot be streamed, so -1, and the handler fails
        log.warning("%s: GET DATA: no sound %s", chan.name, argv[2])
        return Reply("200 result=-1\n", RESULT_FAILURE)
    media.notify_far(chan, Notice("dtmf_prompt"))
    digits, status = await collect_digits(core, chan, argv[2], _int(argv, 3, 0),
                                          _int(argv, 4, 1024))
    if status == "HANGUP":
        return ok(-1)
    if status == "TIMEOUT":
        return ok(digits, " (timeout)")
    return ok(digits)


async def h_get_variable(core: PbxCore, chan: Channel, argv: list[str]) -> Reply:
    if len(argv) < 3:
        return usage("GET VARIABLE <variablename>")
    value = get_variable(core, chan, argv[2])
    return ok(0) if value is None else ok(1, f" ({value})")


async def h_get_full_variable(core: PbxCore, chan: Channel, argv: list[str]) -> Reply:
    if len(argv) < 4:
        return usage("GET FULL VARIABLE <variablename> [<channel name>]")
    target = core.channels.get(argv[4]) if len(argv) > 4 else chan
    if target is None:
        return ok(0)
    return ok(1, f" ({expand(core, target, argv[3])})")


async def h_hangup(core: PbxCore, chan: Channel, argv: list[str]) -> Reply:
    target = core.channels.get(argv[1]) if len(argv) > 1 else chan
    if target is None:
        return ok(-1)
    lifecycle.request_hangup(core, target)
    return ok(1)


async def h_noop(core: PbxCore, chan: Channel, argv: list[str]) -> Reply:
    return ok(0)


async def _say(core: PbxCore, chan: Channel, text: str, escape: str) -> Reply:
    if escape:
        media.notify_far(chan, Notice("dtmf_prompt"))
    for _ in text:
        played = await media.play(core, chan, "", escape, duration_s=core.config.say_digit_s)
        if played.stopped:
            return Reply("200 result=-1\n", RESULT_FAILURE)
        if played.digit is not None:
            return ok(ord(played.digit))
    return ok(0)


async def h_say_digits(core: PbxCore, chan: Channel, argv: list[str]) -> Reply:
    if len(argv) < 4:
        return usage("SAY DIGITS <number> <escape digits>")
    return await _say(core, chan, "".join(c for c in argv[2] if c.isdigit()), argv[3])


async def h_say_number(core: PbxCore, chan: Channel, argv: list[str]) -> Reply:
    if len(argv) < 4 or not argv[2].lstrip("-").isdigit():
        return usage("SAY NUMBER <number> <escape digits> [gender]")
    return await _say(core, chan, argv[2].lstrip("-"), argv[3])


async def h_set_variable(core: PbxCore, chan: Channel, argv: list[str]) -> Reply:
    if len(argv) < 4:
        return usage("SET VARIABLE <variablename> <value>")
    set_variable(core, chan, argv[2], argv[3])
    return ok(1)


async def h_set_callerid(core: PbxCore, chan: Channel, argv: list[str]) -> Reply:
    if len(argv) < 3:
        return usage("SET CALLERID <number>")
    set_callerid(core, chan, argv[2], chan.caller_name)
    return ok(1)


async def h_set_location(core: PbxCore, chan: Channel, argv: list[str]) -> Reply:
    if len(argv) < 3:
        return usage("SET CONTEXT|EXTENSION|PRIORITY <value>")
    what = argv[1].lower()
    if what == "context":
        chan.context = argv[2]
    elif what == "extension":
        chan.exten = argv[2]
    else:
        prio = core.dialplan.resolve_priority(chan.context, chan.exten, argv[2])
        if prio is None:
            return usage("SET CONTEXT|EXTENSION|PRIORITY <value>")
        chan.priority = prio
    return ok(0)


async def h_stream_file(core: PbxCore, chan: Channel, argv: list[str]) -> Reply:
    if len(argv) < 4:
        return usage("STREAM FILE <filename> <escape digits> [sample offset]")
    if core.sounds.missing(argv[2]):
        log.warning("%s: STREAM FILE: no sound %s", chan.name, argv[2])
        return Reply("200 result=-1 endpos=0\n", RESULT_FAILURE)
    if argv[3]:
        media.notify_far(chan, Notice("dtmf_prompt"))
    played = await media.play(core, chan, argv[2], argv[3])
    if played.stopped:
        return Reply(f"200 result=-1 endpos={played.samples}\n", RESULT_FAILURE)
    return ok(ord(played.digit) if played.digit else 0, f" endpos={played.samples}")


async def h_wait_for_digit(core: PbxCore, chan: Channel, argv: list[str]) -> Reply:
    if len(argv) < 4:
        return usage("WAIT FOR DIGIT <timeout>")
    timeout_ms = _int(argv, 3, -1)
    media.notify_far(chan, Notice("dtmf_prompt"))
    digit, stopped = await lifecycle.read_digit(
        core, chan, None if timeout_ms < 0 else timeout_ms / 1000)
    if stopped:
        return Reply("200 result=-1\n", RESULT_FAILURE)
    return ok(ord(digit) if digit else 0)


async def h_record_file(core: PbxCore, chan: Channel, argv: list[str]) -> Reply:
    """res_agi's handle_recordfile: until an escape digit, the timeout, ``s=`` seconds of
    silence (a simulated caller is silent) or a hangup; endpos in samples."""
    if len(argv) < 6:
        return usage("RECORD FILE <filename> <format> <escape digits> <timeout> "
                     "[offset samples] [BEEP] [s=silence]")
    name, fmt, escape, timeout_ms = argv[2], argv[3], argv[4], _int(argv, 5, -1)
    silence_s = next((float(a[2:]) for a in argv[6:] if a.startswith("s=")
                      and a[2:].isdigit()), 0.0)
    target = _record_target(core, name, fmt)
    if target is None:
        log.warning("%s: RECORD FILE: cannot write %s.%s", chan.name, name, fmt)
        return Reply("200 result=-1 (writefile)\n", RESULT_FAILURE)
    if any(a.upper() == "BEEP" for a in argv[6:]):
        await media.play(core, chan, "beep", duration_s=0.25)
    limits = [t for t in (timeout_ms / 1000 if timeout_ms > 0 else None,
                          silence_s or None) if t is not None]
    start = core.clock.now()
    media.notify_far(chan, Notice("dtmf_prompt"))
    deadline = start + min(limits) if limits else None
    digit: str | None = None
    stopped = False
    while True:
        left = None if deadline is None else max(0.0, deadline - core.clock.now())
        got, stopped = await lifecycle.read_digit(core, chan, left)
        if stopped or got is None or got in escape:
            digit = got
            break
    samples = int((core.clock.now() - start) * 8000)
    _write_silence(target, samples)
    if stopped:
        return Reply(f"200 result=-1 (hangup) endpos={samples}\n", RESULT_FAILURE)
    if digit is not None:
        return ok(ord(digit), f" (dtmf) endpos={samples}")
    return ok(0, f" (timeout) endpos={samples}")


def _record_target(core: PbxCore, name: str, fmt: str) -> Path | None:
    base = core.config.record_dir
    if base is None:
        return None
    target = Path(base) / f"{name.lstrip('/')}.{fmt}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return target


def _write_silence(path: Path, samples: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * samples)


async def h_verbose(core: PbxCore, chan: Channel, argv: list[str]) -> Reply:
    log.info("%s AGI verbose: %s", chan.name, argv[1] if len(argv) > 1 else "")
    return ok(1)


COMMANDS: dict[tuple[str, ...], Handler] = {
    ("answer",): h_answer, ("asyncagi", "break"): h_break,
    ("channel", "status"): h_channel_status, ("exec",): h_exec, ("get", "data"): h_get_data,
    ("get", "variable"): h_get_variable, ("get", "full", "variable"): h_get_full_variable,
    ("hangup",): h_hangup, ("noop",): h_noop, ("say", "digits"): h_say_digits,
    ("record", "file"): h_record_file,
    ("say", "number"): h_say_number, ("set", "variable"): h_set_variable,
    ("set", "callerid"): h_set_callerid, ("set", "context"): h_set_location,
    ("set", "extension"): h_set_location, ("set", "priority"): h_set_location,
    ("stream", "file"): h_stream_file, ("control", "stream", "file"): h_stream_file,
    ("wait", "for", "digit"): h_wait_for_digit, ("verbose",): h_verbose,
}


def find_command(argv: list[str]) -> Handler | None:
    words = tuple(a.lower() for a in argv)
    best: tuple[int, Handler | None] = (0, None)
    for key, handler in COMMANDS.items():
        if words[:len(key)] == key and len(key) > best[0]:
            best = (len(key), handler)
    return best[1]


async def execute_command(core: PbxCore, chan: Channel, cmd: AgiCommand
                          ) -> Literal["ok", "break", "failure"]:
    argv = parse_args(cmd.text)
    handler = find_command(argv) if argv else None
    asterisk_id = str(core.rng.randrange(1, 2**31 - 1))
    core.emit("AGIExecStart", "agi", chan, [("CommandId", asterisk_id), ("Command", cmd.text)])
    if handler is None:
        reply = Reply("510 Invalid or unknown command\n")
        code, status = 510, "Invalid or unknown command"
    else:
        if handler is h_stream_file and argv[0].lower() == "control":
            argv = argv[1:]
        reply = await handler(core, chan, argv)
        code = 520 if reply.code == RESULT_SHOWUSAGE else 200
        status = STATUS_TEXT.get(reply.code, "Unknown Result")
    core.emit("AGIExecEnd", "agi", chan, [("CommandId", asterisk_id), ("Command", cmd.text),
                                          ("ResultCode", str(code)), ("Result", status)])
    extra = [("CommandId", cmd.command_id)] if cmd.command_id else []
    core.emit("AsyncAGIExec", "agi", chan, [("Result", url_encode(reply.line)), *extra])
    log.info("%s AGI %r -> %s", chan.name, cmd.text, reply.line.strip())
    if reply.brk:
        return "break"
    return "failure" if reply.code == RESULT_FAILURE else "ok"


__all__ = ["collect_digits", "execute_command", "parse_args"]
