"""Simulator settings and the default dialplan/queues (those of the real-Asterisk reference)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .queues import QueueConfig

# The reference recording's etc/extensions.conf: the hotline's ``ivr`` (parks the call in async
# AGI) and ``ivr_guarded`` (fail-open when the service's heartbeat is stale) plus the helper
# contexts the recordings used for citizens and agents.
DEFAULT_DIALPLAN = """\
[general]
static=yes
writeprotect=no
[ivr]
exten => s,1,Answer()
 same => n,Set(CHANNEL(language)=en)
 same => n,AGI(agi:async)
 same => n,Hangup()
; the simulated citizen: waits, presses 2, then speaks
[citizen]
exten => s,1,Answer()
 same => n,Wait(1.5)
 same => n,SendDTMF(2)
 same => n,Wait(0.5)
 same => n,Playback(/tmp/astrun/sounds/ko1)
 same => n,Wait(30)
 same => n,Hangup()
; agents auto-answer and talk for 3 seconds
[agents]
exten => _10XX,1,Answer()
 same => n,Wait(3)
 same => n,Hangup()
[citizen_impatient]
exten => s,1,Answer()
 same => n,Wait(6)
 same => n,Hangup()
[queue_housing]
exten => s,1,Answer()
 same => n,Queue(housing,,,,60)
 same => n,Hangup()
[ivr_guarded]
; fail-open guard: the service refreshes HOTLINE_HEARTBEAT (epoch seconds) through AMI Setvar
exten => s,1,Answer()
 same => n,GotoIf($[${EPOCH} - 0${GLOBAL(HOTLINE_HEARTBEAT)} > 15]?fallback)
 same => n,AGI(agi:async)
 same => n,Hangup()
 same => n(fallback),Queue(housing,,,,20)
 same => n,Hangup()
[citizen_waits]
exten => s,1,Answer()
 same => n,Wait(12)
 same => n,Hangup()
"""

DEFAULT_QUEUES = """\
[general]
persistentmembers = no
[water]
strategy = leastrecent
timeout = 15
retry = 1
wrapuptime = 2
joinempty = yes
leavewhenempty = no
ringinuse = no
[housing]
strategy = leastrecent
timeout = 15
retry = 1
ringinuse = no
joinempty = yes
"""


@dataclass
class SimConfig:
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "hotline"
    secret: str = "s3cret"
    speed: float = 1.0
    dialplan: str | None = None
    queues: str | Mapping[str, QueueConfig] | Mapping[str, Mapping[str, object]] | None = None
    auth_failure_delay_s: float = 1.0
    # Simulated epoch at start (None: the real time now).
    start_epoch: float | None = None
    # The epoch part of every Uniqueid (None: the clock's second, as Asterisk). Two
    # Asterisks give the same Uniqueid when their calls start in the same second; tests of
    # that clash pin it here rather than race the clock.
    uniqueid_epoch: int | None = None
    # Asterisk sound names (as the dialplan/AGI spell them) -> local audio files.
    sounds: Mapping[str, Path] = field(default_factory=dict)
    # Directories searched for ``<name>.wav|.sln|.sln16|.raw`` when a name is not in ``sounds``.
    sounds_dirs: tuple[Path, ...] = ()
    # Length of a prompt whose file pbxsim cannot find (it exists on the production Asterisk).
    default_prompt_s: float = 1.0
    # As an Asterisk without those files: STREAM FILE and GET DATA of a sound pbxsim cannot
    # find answer "result=-1" and async AGI ends (res_agi: a failure on a live channel).
    missing_sounds_fail: bool = False
    # RECORD FILE writes below this directory (the file's absolute path is kept under it;
    # the recording is silence of the recorded length: pbxsim carries no caller audio on
    # the channel). None: as an Asterisk whose target directory is missing, the command
    # answers "result=-1 (writefile)" and fails.
    record_dir: Path | None = None
    say_digit_s: float = 0.5
    # AudioSocket gives up when the server sent nothing for this long. Recent app_audiosocket
    # gives up after 2 s with no media either way, older releases never: stricter here, so a
    # service that passes keeps its streams alive on every release.
    audiosocket_timeout_s: float = 2.0
    # The caller's line sends no audio while they are quiet (silence suppression: G.729 annex
    # B, Opus DTX, phones with VAD on): app_audiosocket then forwards no frames at all.
    silence_suppression: bool = False
    seed: int = 12345
    uptime_at_start_s: float = 5.0
