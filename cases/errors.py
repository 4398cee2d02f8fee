"""Errors of the case store.

The call path must never drop a caller because the case database misbehaves, so every failure
that means "the store cannot serve you right now" surfaces as one class,
``CaseStoreUnavailable``: the IVR catches that single class, keeps routing the call and lets
the case be written later (or by hand). Everything else is a ``CaseStoreError`` too, so a caller
that wants to be defensive can catch the base class.
"""

from __future__ import annotations


class CaseStoreError(Exception):
    """Base class of everything the case store raises on purpose."""


class CaseStoreUnavailable(CaseStoreError):
    """The database cannot be reached or stays locked; the driver error is ``__cause__``."""


class CaseStoreNotOpen(CaseStoreUnavailable, RuntimeError):
    """Not opened yet: the database was unreachable at start (the service keeps trying), so
    callers of the store see the same 503 as during an outage."""


class CaseNotFound(CaseStoreError, LookupError):
    """No case matches the given number or (node, call_id)."""


class NumberingExhausted(CaseStoreError):
    """The day's 6-digit sequence is used up (a million cases in one day)."""


class CallerNumberUnreadable(CaseStoreError):
    """A stored caller number cannot be decrypted: the secret key differs from the writer's."""


class SecretKeyMismatch(CallerNumberUnreadable):
    """The store was opened with a secret key other than the one its cases were written with
    (a configuration error: raised by ``open``, before the node writes anything)."""


class InvalidTransition(CaseStoreError):
    """The lifecycle does not allow this action in the case's current state."""

    def __init__(self, number: str, state: str, action: str, allowed: tuple[str, ...]) -> None:
        self.number, self.state, self.action, self.allowed = number, state, action, allowed
        options = ", ".join(allowed) if allowed else "none (the case is final)"
        super().__init__(f"cannot {action} case {number}: it is {state}; "
                         f"allowed from {state}: {options}")


class ConcurrentUpdate(CaseStoreError):
    """The case changed since the version the caller saw (optimistic concurrency)."""


class CaseClosed(CaseStoreError):
    """A field edit of a closed or merged case: what was decided is on the record as it was
    decided; reopening (``Action.REOPEN``) is the way to change it."""


class UnknownDepartment(CaseStoreError, LookupError):
    """A department code that is not in the departments table."""
