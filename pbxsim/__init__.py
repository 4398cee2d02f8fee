"""pbxsim: a simulated Asterisk (AMI, Local channels, async AGI, app_queue) for hotline tests.

It speaks AMI byte for byte as the real-Asterisk recordings in ../shared/asterisk-reference do,
so the hotline service can be developed and load-tested without a PBX and then run unchanged
against a real Asterisk.
"""

from .agents import AgentSpec
from .citizens import CallHandle, CallOutcome, CitizenScript
from .clock import SimClock
from .config import DEFAULT_DIALPLAN, DEFAULT_QUEUES, SimConfig
from .queues import QueueConfig
from .sim import CallerSnapshot, MemberSnapshot, PbxSim, QueueSnapshot

__all__ = [
    "DEFAULT_DIALPLAN", "DEFAULT_QUEUES", "AgentSpec", "CallHandle", "CallOutcome",
    "CallerSnapshot", "CitizenScript", "MemberSnapshot", "PbxSim", "QueueConfig",
    "QueueSnapshot", "SimClock", "SimConfig",
]
