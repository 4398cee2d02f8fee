"""Device states: what app_queue sees of a member's phone, and DeviceStateChange events."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .core import PbxCore

# ast_device_state values as app_queue prints them in Status
UNKNOWN, NOT_INUSE, INUSE, BUSY, INVALID, UNAVAILABLE, RINGING = 0, 1, 2, 3, 5, 4, 6
STATE_NAMES = {0: "UNKNOWN", 1: "NOT_INUSE", 2: "INUSE", 3: "BUSY", 4: "UNAVAILABLE",
               5: "INVALID", 6: "RINGING", 7: "RINGINUSE", 8: "ONHOLD"}
STATE_VALUES = {name: value for value, name in STATE_NAMES.items()}


def status_available(status: int) -> bool:
    """app_queue's member_status_available."""
    return status in (NOT_INUSE, UNKNOWN)


@dataclass
class DeviceUse:
    """What the simulated endpoint behind an interface is doing right now."""

    ringing: int = 0
    in_call: bool = False
    wrapup_until: float = 0.0


@functools.lru_cache(maxsize=8192)    # asked for every member on every queue check
def local_device(interface: str) -> tuple[str, str] | None:
    """``Local/1001@agents/n`` -> ("1001", "agents"); None for other technologies."""
    if not interface.lower().startswith("local/"):
        return None
    body = interface[6:].split("/", 1)[0]
    exten, _, context = body.partition("@")
    return exten, context or "default"


class DeviceTracker:
    def __init__(self, core: PbxCore) -> None:
        self._core = core
        self._use: dict[str, DeviceUse] = {}
        self._published: dict[str, str] = {}
        self._custom: dict[str, int] = {}

    def custom_state(self, device: str) -> str:
        """DEVICE_STATE(Custom:name) as read by the dialplan."""
        return STATE_NAMES[self._custom.get(device.lower(), UNKNOWN)]

    def set_custom_state(self, device: str, state: str) -> bool:
        """DEVICE_STATE(Custom:name)=STATE, as a service sets its agents' presence."""
        value = STATE_VALUES.get(state.strip().upper())
        if value is None or not device.lower().startswith("custom:"):
            return False
        self._custom[device.lower()] = value
        self.publish(device, STATE_NAMES[value])
        self._core.queues.refresh_member_status()
        return True

    def use(self, interface: str) -> DeviceUse:
        return self._use.setdefault(interface.lower(), DeviceUse())

    def reachable(self, interface: str) -> bool:
        """Whether dialing the interface can create a call at all."""
        core = self._core
        if interface.lower() in core.agents:
            return True
        loc = local_device(interface)
        return loc is not None and core.dialplan.exists(loc[1], loc[0])

    def status(self, state_interface: str) -> int:
        """The member Status app_queue reports for this state interface."""
        if state_interface.lower().startswith("custom:"):
            return self._custom.get(state_interface.lower(), UNKNOWN)
        loc = local_device(state_interface)
        if loc is not None:
            if not self.reachable(state_interface):
                return INVALID
            device = f"Local/{loc[0]}@{loc[1]}"
            return INUSE if self._core.channels.live_on_device(device) else NOT_INUSE
        if not self.reachable(state_interface):
            return UNAVAILABLE
        u = self.use(state_interface)
        if u.in_call:
            return INUSE
        return RINGING if u.ringing else NOT_INUSE

    def publish(self, device: str, state: str, *, quiet: bool = False) -> None:
        """DeviceStateChange when ``device`` changes state (``quiet``: just remember it)."""
        if self._published.get(device) == state:
            return
        self._published[device] = state
        if not quiet:
            self._core.emit_fields([("Event", "DeviceStateChange"), ("Privilege", "call,all"),
                                    ("Device", device), ("State", state)])

    def channel_changed(self, device: str, *, publish: bool = True) -> None:
        """A channel of ``device`` appeared, was answered or went away.

        Asterisk reports a Local device INUSE once its channels are up, and NOT_INUSE (or
        INVALID for an extension that does not exist) when the last one is gone; app_queue's
        member status follows the device at once.
        """
        if publish:
            if local_device(device) is not None and not self.reachable(device):
                state = "INVALID"
            elif self._core.channels.live_on_device(device):
                state = "INUSE"
            else:
                state = "NOT_INUSE"
            self.publish(device, state)
        self._core.queues.refresh_member_status(device)
