"""extensions.conf: the hotline entry, guarded so that calls never wait on a dead service.

Per called number: Answer; if the service's heartbeat (GLOBAL(HOTLINE_HEARTBEAT), Asterisk's
own epoch seconds written by the service over AMI) is stale, straight to the default group's
queue; otherwise park in ``AGI(agi:async)`` for the service. Should async AGI end with the
caller still on the line (the service released the call, or res_agi failed), the caller goes
to that queue too: the hotline never hangs up on a citizen it has not served.
"""

from __future__ import annotations

import math

from dialplan.common import DialplanError, channel_language, default_queue, header
from ivr.config import AmiConfig, HotlineConfig
from ivr.heartbeat import VARIABLE as HEARTBEAT_VARIABLE
from ivr.menus.waiting import EXIT_CONTEXT

CONTEXT = "hotline"
# Marks a call that bypassed the IVR (no case was opened for it); inherited by the agent's
# channel (the "__" prefix) so an agent desktop can show it.
FALLBACK_VARIABLE = "HOTLINE_FALLBACK"
# Every number dialled into [hotline], and calls arriving without one (analogue lines, Local
# channels). See ``called_numbers``.
ANY_NUMBER = ("_X.", "_+X.", "s")

MODULES = ("pbx_config", "res_agi", "app_queue", "res_musiconhold", "func_global",
           "func_channel", "app_audiosocket", "res_audiosocket", "format_wav", "format_pcm",
           "app_playback")


def stale_after_s(ami: AmiConfig) -> int:
    """Seconds without a heartbeat after which the dialplan stops waiting for the service.

    Three beats, so one lost Setvar is no outage; and at least one beat plus an action
    timeout, the longest a healthy but slow AMI round trip may delay the next beat.
    """
    interval = ami.heartbeat_interval_s
    return max(1, math.ceil(max(3 * interval, interval + ami.action_timeout_s)))


def called_numbers(config: HotlineConfig) -> dict[str, str]:
    """Extension of the hotline entry -> the locale its callers are greeted in: one entry
    per number a menu lists (``ivr.menus.<menu>.numbers``), in that menu's language, and the
    catch-alls for every other number, in the default menu's language."""
    menus = config.ivr.menus
    default = menus[config.ivr.default_menu].language if config.ivr.default_menu in menus \
        else config.service.locale
    numbers = {number: default for number in ANY_NUMBER}
    for menu in menus.values():
        for number in menu.numbers:
            numbers[number] = menu.language
    return numbers


def exit_keys(config: HotlineConfig) -> list[str]:
    """The menus' callback keys: app_queue's exit context (queues.conf ``context``) lists
    them, so a waiting caller pressing one leaves the queue back to the service."""
    return sorted({m.waiting.callback_key for m in config.ivr.menus.values()
                   if m.waiting is not None})


def render_exit_context(config: HotlineConfig) -> list[str]:
    keys = exit_keys(config)
    if not keys:
        return []
    lines = ["", f"[{EXIT_CONTEXT}]",
             "; app_queue jumps here when a waiting caller presses the callback key; the",
             "; service, which ran Queue() over AGI, books the callback. Reached in the dialplan",
             "; only without the service: nobody can book it, so back to the queue."]
    for key in keys:
        lines += [f"exten => {key},1,Goto({CONTEXT},s,queue)"]
    return lines


def guard_expression(stale_s: int) -> str:
    # The leading 0 makes an unset heartbeat read as 0: stale, so the guard fails open.
    return f"$[${{EPOCH}} - 0${{{HEARTBEAT_VARIABLE}}} > {stale_s}]"


def _entry(number: str, *, language: str, stale_s: int, queue: str, timeout_s: int,
           watchdog_s: int = 0) -> list[str]:
    armed = [f" same => n,Set(TIMEOUT(absolute)={watchdog_s})"] if watchdog_s else []
    disarmed = [" same => n,Set(TIMEOUT(absolute)=0)"] if watchdog_s else []
    return [
        f"exten => {number},1,Answer()",
        # Prompts are looked up by channel language; the service greets in its default locale.
        f" same => n,Set(CHANNEL(language)={language})",
        f" same => n,GotoIf({guard_expression(stale_s)}?fallback)",
        *armed,
        " same => n,AGI(agi:async)",
        *disarmed,
        # Still here: the service let go of the caller without queueing it. The penalty window
        # it may have set must not narrow the default queue.
        f" same => n,Set(__{FALLBACK_VARIABLE}=agi-${{AGISTATUS}})",
        " same => n,Set(QUEUE_MIN_PENALTY=)",
        " same => n,Set(QUEUE_MAX_PENALTY=)",
        " same => n,Goto(queue)",
        f" same => n(fallback),Set(__{FALLBACK_VARIABLE}=stale)",
        f" same => n(queue),Queue({queue},,,,{timeout_s})",
        " same => n,Hangup()",
    ]


def agi_priority(watchdog_s: int) -> int:
    """The priority of ``AGI(agi:async)`` in every entry of the hotline context. A call there
    whose application is not AGI runs one the service started with EXEC (Queue, Dial,
    AudioSocket): Asterisk shows the last application run, not the AGI it runs in."""
    lines = _entry("x", language="x", stale_s=1, queue="x", timeout_s=1,
                   watchdog_s=watchdog_s)
    return 1 + next(i for i, line in enumerate(lines) if "AGI(agi:async)" in line)


def _watchdog(queue: str, timeout_s: int) -> list[str]:
    """The T extension: where Asterisk sends a call whose TIMEOUT(absolute) ran out, i.e. the
    service stopped pushing it back (gone for good, or its AMI link down that long)."""
    return [
        f"exten => T,1,Set(__{FALLBACK_VARIABLE}=watchdog)",
        " same => n,Set(TIMEOUT(absolute)=0)",
        " same => n,Set(QUEUE_MIN_PENALTY=)",
        " same => n,Set(QUEUE_MAX_PENALTY=)",
        f" same => n,Queue({queue},,,,{timeout_s})",
        " same => n,Hangup()",
    ]


def _global_name() -> str:
    return HEARTBEAT_VARIABLE.removeprefix("GLOBAL(").removesuffix(")")


def render_extensions(config: HotlineConfig) -> str:
    stale_s = stale_after_s(config.ami)
    queue = default_queue(config)
    numbers = called_numbers(config)
    if not numbers:
        raise DialplanError("the hotline entry needs at least one called number")
    lines = [header("extensions.conf: the hotline entry", [
        ("Modules, besides the channel driver, codecs and bridges: " + ", ".join(MODULES)
         + ". app_audiosocket must be loaded although no "
         "line below names AudioSocket: the service starts it on the parked call over AGI "
         "(EXEC AudioSocket) to hear the caller."),
        (f"Route the hotline's numbers here: context={CONTEXT} on the trunk's endpoint, or "
         "in an existing inbound context:"),
        f"   exten => 12345,1,Goto({CONTEXT},${{EXTEN}},1)",
        (f"Fail-open guard: the service writes {HEARTBEAT_VARIABLE} (Asterisk's epoch seconds, "
         f"from its Ping reply) every {config.ami.heartbeat_interval_s:g} s. When it is older "
         f"than {stale_s} s, or unset, a new call goes straight to queue {queue} without async "
         "AGI. A call already parked when the service stops waits for it to come back and "
         "resume the call. A call whose async AGI ends with the caller still on the line "
         "goes to that queue too: the service hangs up the calls it is done with."),
    ]),
        "[general]",
        "static=yes",
        # 'dialplan save' would overwrite this file with a copy stripped of its comments.
        "writeprotect=yes",
        # A dialplan reload must not wipe the heartbeat (every new call would fail open until
        # the next beat).
        "clearglobalvars=no",
        "",
        "[globals]",
        f"; {_global_name()} is not defined here: a reload would reset it.",
        "",
        f"[{CONTEXT}]"]
    for i, (number, locale) in enumerate(sorted(numbers.items())):
        if i:
            lines.append("")
        lines.extend(_entry(number, language=channel_language(locale), stale_s=stale_s,
                            queue=queue, timeout_s=config.ivr.queue_timeout_s,
                            watchdog_s=config.ivr.watchdog_s))
    if config.ivr.watchdog_s:
        lines += ["", *_watchdog(queue, config.ivr.queue_timeout_s)]
    lines.extend(render_exit_context(config))
    return "\n".join(lines) + "\n"
