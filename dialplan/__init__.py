"""Asterisk configuration and prompt audio generated from the hotline configuration.

``generate(config, out_dir)`` writes extensions.conf (the guarded hotline entry),
queues.conf (one queue per routing group), queuerules.conf (only with penalty rules), a
manager.conf snippet (the service's AMI user) and ``sounds/`` (every prompt, every locale,
8 kHz 16-bit mono WAV). The same configuration always gives the same bytes.
"""

from dialplan.common import DialplanError
from dialplan.generate import build, build_audio, build_text, generate, write

__all__ = ["DialplanError", "build", "build_audio", "build_text", "generate", "write"]
