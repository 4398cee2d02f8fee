"""Text the store writes: refused up front when a database would refuse (or mangle) it.

PostgreSQL refuses the NUL character in ``text`` and in JSONB, and no database stores a lone
surrogate (a ``str`` that is not valid Unicode, e.g. ``"\\ud83d"`` from a JSON body, cannot be
encoded as UTF-8). Left to the driver, either fails the transaction with a driver error (a
server error for what is bad input), on one backend only: SQLite keeps a NUL that PostgreSQL
refuses. Checked here, both backends refuse the same input with a ``ValueError`` that names the
field.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

# The width of the ``actor`` columns (case_events, audit_log): who did it is never cut short.
ACTOR_MAX = 64


def storable(value: str) -> str:
    """``value`` if both databases can store it, else ``ValueError`` saying why."""
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("is not valid Unicode (a lone surrogate)") from None
    return value


def check_storable(name: str, value: str | None) -> None:
    if value is not None:
        try:
            storable(value)
        except ValueError as e:
            raise ValueError(f"{name} {e}") from None


def check_actor(actor: str) -> str:
    """The actor, stripped: non-empty, storable and within its column on every backend
    (PostgreSQL would refuse a longer one, SQLite keep it)."""
    actor = (actor or "").strip()
    if not actor:
        raise ValueError("an actor is needed: who did it is part of the record")
    check_storable("actor", actor)
    if len(actor) > ACTOR_MAX:
        raise ValueError(f"actor {actor[:20]!r}… is {len(actor)} characters; at most "
                         f"{ACTOR_MAX}")
    return actor


# A pydantic field type: text a case may hold.
StoredText = Annotated[str, AfterValidator(storable)]
