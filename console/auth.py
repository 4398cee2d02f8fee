"""Users, password hashes, roles and server-side sessions of the web console.

Passwords are stored as scrypt hashes (stdlib ``hashlib.scrypt``) in the format
``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>``; ``python -m console.auth`` prints one for a
password read from stdin, to paste into ``[[web.users]]``. Sessions live in memory on the
server: the cookie carries only a random id, so logging out or restarting really ends them and
nothing a browser holds can be forged into a role.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import hashlib
import hmac
import secrets
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, field_validator

# scrypt cost: ~16 MiB and a few tens of ms per check, well above what guessing can afford.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_DKLEN = 32


class Role(enum.StrEnum):
    OPERATOR = "operator"        # takes calls: screen pops, the case form, pause/resume
    SUPERVISOR = "supervisor"    # admin: the live board, queue and routing changes, audit
    DEPARTMENT = "department"    # a department's handler: the cases dispatched to it


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R,
                  p: int = SCRYPT_P) -> str:
    if not password:
        raise ValueError("empty password")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=_DKLEN,
                            maxmem=256 * 1024 * 1024)
    b64 = base64.b64encode
    return f"scrypt${n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of ``password`` against a ``hash_password`` string."""
    try:
        scheme, n, r, p, salt_b64, hash_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        salt, want = base64.b64decode(salt_b64), base64.b64decode(hash_b64)
        got = hashlib.scrypt(password.encode(), salt=salt, n=int(n), r=int(r), p=int(p),
                             dklen=len(want), maxmem=256 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


class WebUser(BaseModel):
    """One ``[[web.users]]`` entry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # At most 60: the name is recorded as the actor "web:<name>" of what the user does, in
    # columns of 64 characters (cases.text.ACTOR_MAX); a longer name could not be recorded.
    name: str = Field(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9_.@-]+$")
    password_hash: str = Field(min_length=10)
    role: Role
    display_name: str = ""
    # Operators: the queue member they answer as. When set, the operator page signs in as
    # exactly this member (one person cannot take over another's screen pops).
    member: str | None = Field(default=None, max_length=64)
    interface: str | None = Field(default=None, max_length=128)
    department: str | None = Field(default=None, max_length=64)   # department handlers

    @field_validator("password_hash")
    @classmethod
    def _scrypt(cls, v: str) -> str:
        if not v.startswith("scrypt$") or v.count("$") != 5:
            raise ValueError("password_hash must come from `python -m console.auth`")
        return v


# Demo accounts for `hotline demo --serve` only: well-known passwords, never for production.
DEMO_PASSWORDS = {"operator": "operator", "supervisor": "supervisor",
                  "department": "department"}


def demo_users(*, members: Iterable[tuple[str, str]] = ()) -> list[WebUser]:
    """``operator`` (any member; plus ``agentNNNN`` logins locked to each given member),
    ``supervisor`` and ``department``, each with its name as password. Cheap hashes: the
    demo starts in well under a second and these passwords protect nothing."""
    cheap = {"n": 2**10, "r": 8, "p": 1}
    users = [
        WebUser(name="operator", password_hash=hash_password("operator", **cheap),
                role=Role.OPERATOR, display_name="Demo operator"),
        WebUser(name="supervisor", password_hash=hash_password("supervisor", **cheap),
                role=Role.SUPERVISOR, display_name="Demo supervisor"),
        WebUser(name="department", password_hash=hash_password("department", **cheap),
                role=Role.DEPARTMENT, display_name="Demo department",
                department="330100-housing"),
    ]
    for member, interface in members:
        users.append(WebUser(name=member, password_hash=hash_password(member, **cheap),
                             role=Role.OPERATOR, member=member, interface=interface))
    return users


class Users:
    """The configured users, by name."""

    def __init__(self, users: Iterable[WebUser]) -> None:
        self._by_name = {u.name: u for u in users}
        # Queue members that belong to one login: nobody else may answer as them.
        self._by_member = {u.member: u for u in self._by_name.values() if u.member}
        # Checked when the name is unknown too, so timing does not tell which names exist.
        self._dummy = hash_password(secrets.token_hex(8), n=2**12)

    def __len__(self) -> int:
        return len(self._by_name)

    def get(self, name: str) -> WebUser | None:
        return self._by_name.get(name)

    def owner_of(self, member: str) -> WebUser | None:
        """The user bound to queue member ``member`` (``WebUser.member``), if any."""
        return self._by_member.get(member)

    async def authenticate(self, name: str, password: str) -> WebUser | None:
        user = self._by_name.get(name)
        stored = user.password_hash if user is not None else self._dummy
        # scrypt takes tens of ms: off the event loop, so AMI events keep flowing meanwhile.
        ok = await asyncio.to_thread(verify_password, password, stored)
        return user if ok and user is not None else None


@dataclass(slots=True)
class Session:
    sid: str
    user: WebUser
    csrf: str
    created: float
    last_seen: float
    member: str | None = None          # operator page: the queue member signed in as
    interface: str | None = None


@dataclass(slots=True)
class SessionStore:
    """In-memory sessions with an idle timeout and an absolute lifetime."""

    idle_s: float = 8 * 3600.0
    max_age_s: float = 14 * 3600.0   # one long shift
    clock: Callable[[], float] = time.monotonic
    _sessions: dict[str, Session] = field(default_factory=dict)

    def create(self, user: WebUser) -> Session:
        self._expire()
        now = self.clock()
        s = Session(secrets.token_urlsafe(32), user, secrets.token_urlsafe(32), now, now,
                    member=user.member, interface=user.interface)
        self._sessions[s.sid] = s
        return s

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        s = self._sessions.get(sid)
        if s is None:
            return None
        now = self.clock()
        if not self._live(s, now):
            del self._sessions[sid]
            return None
        s.last_seen = now
        return s

    def drop(self, sid: str) -> None:
        self._sessions.pop(sid, None)

    def valid(self, sid: str) -> bool:
        """Whether ``sid`` is a live session, without counting as activity (a websocket's
        traffic is not the user's)."""
        s = self._sessions.get(sid)
        return s is not None and self._live(s, self.clock())

    def _live(self, s: Session, now: float) -> bool:
        return now - s.last_seen <= self.idle_s and now - s.created <= self.max_age_s

    def _expire(self) -> None:
        now = self.clock()
        for sid, s in list(self._sessions.items()):
            if not self._live(s, now):
                del self._sessions[sid]


@dataclass(slots=True)
class LoginThrottle:
    """At most ``limit`` failed logins per client address and user name within ``window_s``:
    slows guessing down without locking a real user out for long.

    Keyed by the address as well as the name: keyed by the name alone, anyone who knows a
    user's name could keep that user locked out for good by failing on purpose; this way a
    guesser blocks only their own address. (Behind a reverse proxy every client has the
    proxy's address, and the throttle is per name again for everyone behind it.)"""

    limit: int = 5
    window_s: float = 300.0
    max_keys: int = 10_000          # bounds the memory a flood of made-up names can take
    clock: Callable[[], float] = time.monotonic
    _fails: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def blocked(self, address: str, name: str) -> bool:
        now = self.clock()
        key = (address, name)
        recent = [t for t in self._fails.get(key, []) if now - t < self.window_s]
        if recent:
            self._fails[key] = recent
        else:
            self._fails.pop(key, None)
        return len(recent) >= self.limit

    def failed(self, address: str, name: str) -> None:
        self._fails.setdefault((address, name), []).append(self.clock())
        if len(self._fails) > self.max_keys:
            self._prune()

    def succeeded(self, address: str, name: str) -> None:
        self._fails.pop((address, name), None)

    def _prune(self) -> None:
        now = self.clock()
        for key, times in list(self._fails.items()):
            if now - times[-1] >= self.window_s:
                del self._fails[key]
        while len(self._fails) > self.max_keys:   # all recent: the oldest keys go first
            del self._fails[next(iter(self._fails))]


def main() -> int:
    """Print a password hash for ``[[web.users]]`` (password on stdin, never argv)."""
    password = sys.stdin.readline().rstrip("\n")
    if not password:
        print("usage: echo PASSWORD | python -m console.auth", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
