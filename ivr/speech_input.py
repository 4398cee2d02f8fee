"""Listening to the caller: AudioSocket from Asterisk into Vosk, during one IVR step.

The session asks Asterisk to ``EXEC AudioSocket <uuid>,<host:port>``; the stream registered
under that uuid is captured until the caller stops talking (or presses a key), then closed,
which ends the AudioSocket application and hands the channel back to async AGI.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable

from ivr.agi import AgiChannel
from routing.topics import TopicCatalogue
from speech.audiosocket_server import AudioSocketServer
from speech.capture import Utterance, capture_utterance
from speech.decoder import Mode
from speech.engine import SpeechEngine

log = logging.getLogger("hotline.speech")

CONNECT_TIMEOUT_S = 5.0


class SpeechInput:
    def __init__(self, server: AudioSocketServer, engine: SpeechEngine,
                 catalogue: TopicCatalogue, *, advertise: str, max_utterance_s: float,
                 transcription: Mode | None) -> None:
        self._server = server
        self._engine = engine
        self._catalogue = catalogue
        self._advertise = advertise
        self._max_s = max_utterance_s
        self._transcription = transcription

    async def listen(self, agi: AgiChannel, locale: str,
                     on_partial: Callable[[str], None] | None = None) -> Utterance:
        """One utterance. Raises on any failure; the caller of this falls back to keys."""
        sid = uuid.uuid4()
        stream = self._server.expect(sid)
        exec_task = asyncio.create_task(
            agi.exec("AudioSocket", f"{sid},{self._advertise}",
                     timeout=self._max_s + CONNECT_TIMEOUT_S + 10),
            name=f"audiosocket-{sid}")
        try:
            await stream.wait_connected(CONNECT_TIMEOUT_S)
            return await capture_utterance(stream, self._engine, self._catalogue, locale,
                                           self._max_s, on_partial,
                                           transcription=self._transcription)
        finally:
            await stream.close()       # hangup frame: AudioSocket() returns to the AGI loop
            try:
                await asyncio.wait_for(asyncio.shield(exec_task), 5.0)
            except Exception as e:
                if not exec_task.done():
                    exec_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await exec_task
                log.debug("AudioSocket exec on %s ended with %s", agi.channel, e)
