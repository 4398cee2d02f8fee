"""The IVR menus as configuration data (pydantic, frozen, unknown keys refused).

A menu is one hotline in one language: its prompts (each with the text the dialplan
generator speaks with espeak-ng), its nodes and what happens for emergencies, status lookups,
messages, the wait in the queue and the callback survey. Each model checks what it can see
by itself (shapes, ranges, which fields an action needs); references between parts and to the
topic catalogue and routing groups are checked by ``ivr.menus.check`` once the whole
configuration is known.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from ivr.menus.hours import parse_range

KEYS = "0123456789*#"
Key = Annotated[str, Field(pattern=r"^[0-9*#]$")]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_]+$")]
SoundName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*$")]


def _range(text: str) -> str:
    parse_range(text)
    return text


HoursRange = Annotated[str, AfterValidator(_range)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


ActionKind = Literal["goto", "route", "human", "emergency", "status", "message", "callback",
                     "hangup", "language"]
# Which fields each action takes; everything else given with it is a mistake.
_ACTION_FIELDS: dict[str, tuple[set[str], set[str]]] = {
    # kind: (required, optional) besides "do" and "prompt"
    "goto": ({"node"}, set()),
    "route": (set(), {"topic", "group"}),
    "human": (set(), set()),
    "emergency": ({"topic"}, set()),
    "status": (set(), set()),
    "message": (set(), set()),
    "callback": (set(), set()),
    "hangup": (set(), set()),
    "language": ({"menu"}, set()),
}


class ActionConfig(_Strict):
    """What a key (or the end of a node's attempts) does.

    ``goto`` a node; ``route`` to a topic or a routing group (its queue); ``human`` (the
    default group);
    ``emergency`` for an emergency topic; ``status`` (case status lookup, 过程查询);
    ``message`` (leave a recorded message); ``callback`` (ask to be called back);
    ``hangup``; ``language`` (switch to another menu). ``prompt`` is played first.
    """

    do: ActionKind
    prompt: Name | None = None
    node: Name | None = None
    topic: Name | None = None
    group: str | None = None
    menu: str | None = None

    @model_validator(mode="after")
    def _fields_fit(self) -> ActionConfig:
        required, optional = _ACTION_FIELDS[self.do]
        given = {f for f in ("node", "topic", "group", "menu") if getattr(self, f) is not None}
        missing = required - given
        if missing:
            raise ValueError(f"action {self.do!r} needs {', '.join(sorted(missing))}")
        extra = given - required - optional
        if extra:
            raise ValueError(f"action {self.do!r} does not take {', '.join(sorted(extra))}")
        if self.do == "route" and len(given) != 1:
            raise ValueError("action 'route' needs exactly one of topic or group")
        return self


HUMAN = ActionConfig(do="human")


class NodeConfig(_Strict):
    """One step of a menu: prompts (a key stops them), then keys and/or speech."""

    prompts: list[Name] = Field(min_length=1)
    keys: dict[Key, ActionConfig] = Field(default_factory=dict)
    # The topic catalogue's keys (topics[].key) route to their topics; explicit keys win.
    topic_keys: bool = False
    # Listen after the prompts when speech works for the call's language (keys still work).
    speech: bool = False
    timeout_ms: int | None = Field(default=None, ge=500, le=60000)  # None: ivr.input_timeout_ms
    attempts: int | None = Field(default=None, ge=1, le=5)          # None: ivr.max_attempts
    on_failure: ActionConfig = HUMAN      # no valid input after the last attempt


class PromptConfig(_Strict):
    text: str = Field(min_length=1)       # what the generated WAV says (espeak-ng)
    sound: SoundName | None = None        # an existing recording instead of the generated one


class EmergencyConfig(_Strict):
    """An emergency topic: ``advise`` plays the prompt (hang up and dial 119/110/120);
    ``transfer`` plays it and hands the call over with ``EXEC Dial`` (``dial``) or an AMI
    Redirect (``redirect`` = "context,exten,priority"). If a transfer fails or the caller
    stays on the line after the advice, the call is queued with the topic's priority."""

    mode: Literal["advise", "transfer"]
    prompt: Name
    dial: str | None = Field(default=None, min_length=1)
    dial_timeout_s: int = Field(default=30, ge=5, le=120)
    redirect: str | None = Field(default=None, pattern=r"^[^,\s]+,[^,\s]+,[^,\s]+$")

    @model_validator(mode="after")
    def _target(self) -> EmergencyConfig:
        targets = (self.dial is not None) + (self.redirect is not None)
        if self.mode == "transfer" and targets != 1:
            raise ValueError("mode 'transfer' needs exactly one of dial or redirect")
        if self.mode == "advise" and targets:
            raise ValueError("mode 'advise' takes no dial or redirect")
        return self


class StatusConfig(_Strict):
    """Case status lookup (过程查询): the caller keys a case number, hears status and deadline."""

    ask: Name                             # "please key your case number, then #"
    not_found: Name                       # "no case with this number"
    intro: Name                           # "case" (then the number, digit by digit)
    deadline: Name                        # "to be handled by" (then YYYYMMDD by digits)
    statuses: dict[str, Name]             # case status code -> prompt ("being handled")
    unknown_status: Name                  # a status without its own prompt
    max_digits: int = Field(default=14, ge=4, le=32)
    attempts: int = Field(default=2, ge=1, le=5)     # wrong numbers before a human
    then: Name | None = None              # node after the read-back (None: goodbye, hang up)


class MessageConfig(_Strict):
    """Leave a message (after hours): recorded, transcribed when speech is available."""

    intro: Name                           # "leave your message after the tone, # when done"
    thanks: Name                          # "thank you, we will call you back"
    failed: Name                          # "we could not record; we will call you back"
    max_s: float = Field(default=60.0, gt=0, le=300)
    silence_s: float = Field(default=4.0, gt=0, le=30)   # ends the message after speech


class WaitingConfig(_Strict):
    """While the caller waits in the queue: the callback offer and its key.

    app_queue announces position and expected wait itself; ``offer`` ("press 5 to be called
    back instead") is spoken after the hold announcement it repeats, and ``callback_key``
    leaves the queue (its exit context). ``confirm`` is played before the call ends."""

    offer: Name                           # "press 5 to be called back instead"
    confirm: Name                         # "we will call you back; goodbye"
    callback_key: Key = "5"

    @model_validator(mode="after")
    def _key(self) -> WaitingConfig:
        if self.callback_key in ("0", "#", "*"):
            raise ValueError("callback_key: 0 reaches a person, # and * are not "
                             "extensions; use a digit 1-9")
        return self


class SurveyConfig(_Strict):
    """The callback survey (回访) call: one 1-5 key."""

    intro: Name                           # "this is 12345 about your case"
    ask: Name                             # "press 1 (very unhappy) to 5 (very satisfied)"
    thanks: Name
    sorry: Name                           # after a low score: "we will handle it again"
    attempts: int = Field(default=2, ge=1, le=5)
    timeout_ms: int = Field(default=6000, ge=1000, le=60000)


class MenuConfig(_Strict):
    language: str = Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")   # e.g. "zh-CN"
    numbers: list[str] = Field(default_factory=list)   # called numbers (DNID) of this menu
    sounds: SoundName | None = None       # sound directory; None: "hotline/<menu name>"
    start: Name = "greeting"
    prompts: dict[Name, str | PromptConfig]
    # Words for SAY DIGITS 0-9 in this language (generated as digits/0 ... digits/9).
    digit_words: list[str] = Field(default_factory=list)
    # Said instead of a topic, these ask for a person (matched in the transcript).
    human_words: list[str] = Field(default_factory=list)
    retry_no_input: Name | None = None    # played before the next attempt
    retry_invalid: Name | None = None
    hours: list[HoursRange] = Field(default_factory=list)   # empty: always open
    holidays: list[date] = Field(default_factory=list)
    workdays: list[date] = Field(default_factory=list)      # 调休: open with Monday's hours
    after_hours: Name | None = None       # node outside the hours
    nodes: dict[Name, NodeConfig] = Field(min_length=1)
    emergency: dict[Name, EmergencyConfig] = Field(default_factory=dict)
    # An emergency heard by speech at a node that also takes ordinary topics: "confirm" takes
    # the caller to the node offering it by key, where only keys count; "act" handles it at
    # once. A keyword spotter hears emergency words in everyday speech (measured: the '문의'
    # of '보험 문의' as 가스누출 at 0.77), and the handling tells the caller to hang up and
    # dial 119, or transfers them there.
    spoken_emergency: Literal["confirm", "act"] = "confirm"
    status: StatusConfig | None = None
    message: MessageConfig | None = None
    waiting: WaitingConfig | None = None
    survey: SurveyConfig | None = None

    @model_validator(mode="after")
    def _digits(self) -> MenuConfig:
        if self.digit_words and len(self.digit_words) != 10:
            raise ValueError("digit_words: give the words for 0 to 9, ten of them")
        if (self.hours or self.holidays) and self.after_hours is None:
            raise ValueError("after_hours: opening hours need the node callers get outside "
                             "them")
        return self

    def sound_of(self, menu_name: str, prompt: str) -> str:
        """The Asterisk sound name of a prompt (STREAM FILE / GET DATA argument)."""
        p = self.prompts[prompt]
        if isinstance(p, PromptConfig) and p.sound is not None:
            return p.sound
        return f"{self.sounds or f'hotline/{menu_name}'}/{prompt}"

    def text_of(self, prompt: str) -> str:
        p = self.prompts[prompt]
        return p if isinstance(p, str) else p.text


class SurveyCallConfig(_Strict):
    """How the survey call is placed (AMI Originate)."""

    # Dial string of the citizen; {number} is the caller's number from the case.
    dial: str = Field(default="PJSIP/{number}@trunk", min_length=1)
    # Where the answered call goes: a dialplan location that runs AGI(agi:async).
    context: str = Field(default="hotline", min_length=1)
    exten: str = Field(default="s", min_length=1)
    caller_id: str = "12345"
    ring_timeout_s: int = Field(default=45, ge=5, le=300)
    menu: str = ""                         # "": the menu of the case's called number
    # The service places the survey of every replied case by itself (``ivr.survey_scheduler``):
    # ``after_s`` after the reply, within ``hours`` (the centre's time zone), at most
    # ``per_check`` calls every ``check_s``; a citizen not reached is called again after
    # ``retry_s``, ``attempts`` times in all, then the case is closed without the callback
    # (with the reason, for supervision). Off by default: a centre decides to dial citizens.
    auto: bool = False
    after_s: int = Field(default=3600, ge=0)
    hours: list[HoursRange] = Field(default_factory=lambda: ["mon-sun 09:00-20:00"])
    holidays: list[date] = Field(default_factory=list)      # no survey calls on these days
    workdays: list[date] = Field(default_factory=list)      # 调休: calls with Monday's hours
    attempts: int = Field(default=3, ge=1, le=10)
    retry_s: int = Field(default=7200, ge=60)
    check_s: float = Field(default=60.0, gt=0)
    per_check: int = Field(default=10, ge=1, le=1000)

    @model_validator(mode="after")
    def _retry_after_ringing(self) -> SurveyCallConfig:
        if self.retry_s <= self.ring_timeout_s:
            raise ValueError(f"retry_s ({self.retry_s}) must be longer than ring_timeout_s "
                             f"({self.ring_timeout_s}): the next call would start while the "
                             "last one may still ring")
        return self
