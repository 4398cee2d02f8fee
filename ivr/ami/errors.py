"""Errors of the AMI link, one small hierarchy so callers can degrade precisely."""

from __future__ import annotations


class AmiError(Exception):
    pass


class AmiNotConnected(AmiError):
    """The link is down; nothing was sent. Safe to retry after reconnect."""


class AmiDisconnected(AmiError):
    """The connection dropped while an action waited for its reply; it may or may not have run."""


class AmiTimeout(AmiError):
    """No reply within the action timeout."""


class AmiActionError(AmiError):
    """Asterisk answered ``Response: Error`` (the message says why)."""

    def __init__(self, action: str, message: str) -> None:
        super().__init__(f"{action}: {message}")
        self.action = action
        self.message = message


class AgiHangup(AmiError):
    """The channel left async AGI (hung up or redirected) before the command's result came."""


class AgiLeft(AgiHangup):
    """The channel left async AGI and may still be up: the dialplan has the caller now (the
    watchdog's queue, a Redirect). A command sent then would never run. ``unseen``: learnt
    after a reconnect, the channel still up and out of AGI (no AsyncAGIEnd came)."""

    def __init__(self, message: str, *, unseen: bool = False) -> None:
        super().__init__(message)
        self.unseen = unseen


class AgiResultLost(AmiError):
    """The link dropped while a command ran and its result can no longer be known."""


class AgiCommandError(AmiError):
    """Asterisk rejected an AGI command (510/520)."""
