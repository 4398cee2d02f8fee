"""manager.conf snippet: the service's AMI user, with only the classes the service uses.

An action is allowed when the user's write classes share one class with the action's
authority (Asterisk's manager.c: ``writeperm & authority``, or an authority of 0); an event
is sent when the read classes share one with its class. The authorities below are those
Asterisk registers (main/manager.c, apps/app_queue.c, res/res_agi.c).
"""

from __future__ import annotations

from dialplan.common import DialplanError, header, service_address
from ivr.config import HotlineConfig

# AMI action -> the classes Asterisk accepts for it (empty: no class needed).
ACTIONS: dict[str, tuple[str, ...]] = {
    "Login": (), "Challenge": (), "Ping": (), "Logoff": (),
    "QueueStatus": (), "QueueSummary": (),
    "Setvar": ("call",), "Redirect": ("call",),
    "Getvar": ("call", "reporting"),
    "Hangup": ("system", "call"),
    "CoreShowChannels": ("system", "reporting"),
    "Originate": ("originate",),
    "AGI": ("agi",),
    "QueueAdd": ("agent",), "QueueRemove": ("agent",), "QueuePause": ("agent",),
    "QueuePenalty": ("agent",),
}
# 'reporting' rather than 'system' for CoreShowChannels: system would also allow Reload,
# ModuleLoad and Originate of System()/Exec().
WRITE = ("agent", "agi", "call", "originate", "reporting")

# Event class -> what the service reads in it.
EVENTS: dict[str, str] = {
    "agent": "QueueCallerJoin/Leave/Abandon, AgentCalled/Connect/Complete, QueueMember*",
    "agi": "AsyncAGIStart/Exec/End",
    "call": "Hangup, OriginateResponse, Newchannel",
    "dialplan": "VarSet (Newexten is filtered out below)",
    "system": "FullyBooted",
}
READ = tuple(sorted(EVENTS))


def _escape(value: str) -> str:
    # ';' starts a comment in Asterisk's config files.
    if "\n" in value or "\r" in value:
        raise DialplanError("ami.secret: must be one line")
    return value.replace(";", "\\;")


def render_manager(config: HotlineConfig) -> str:
    addr = service_address(config)
    mask = "255.255.255.255" if ":" not in addr else "128"
    ami = config.ami
    lines = [header("manager.conf: the hotline service's AMI user", [
        ("Add this section to /etc/asterisk/manager.conf, whose [general] must have "
         f"enabled=yes, port={ami.port} and a bindaddr the service reaches ({ami.host})."),
        "write (actions the service sends, and the classes that allow each):",
        *(f"   {name}: {', '.join(classes) or 'no class needed'}"
          for name, classes in sorted(ACTIONS.items())),
        "read (events the service follows):",
        *(f"   {cls}: {what}" for cls, what in sorted(EVENTS.items())),
    ]),
        f"[{ami.username}]",
        f"secret={_escape(ami.secret)}",
        "deny=0.0.0.0/0.0.0.0",
        "deny=::/0",
        f"permit={addr}/{mask}",
        f"read={','.join(READ)}",
        f"write={','.join(WRITE)}",
        # One Newexten per dialplan step of every channel: the bulk of the dialplan class,
        # and nothing the service uses.
        "eventfilter=!Event: Newexten",
        # Event bursts (many calls ending at once) must not disconnect a briefly busy service.
        "writetimeout=1000",
    ]
    return "\n".join(lines) + "\n"
