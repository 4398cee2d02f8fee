"""The topic of what a caller said, from the keyword spotter's words and the transcript.

The spotter (a grammar of the keywords) decides the topic; the free transcript, when there is
one, is read as well: an emergency in either wins (the spotter can miss a word the
transcript has, and a caller who mentions a fire among other things must not be queued for
the other things), else the spotter's topic, else the transcript's.
"""

from __future__ import annotations

from collections.abc import Sequence

from routing.topics import Classification, TopicCatalogue
from speech.decoder import Word


def topic_of(catalogue: TopicCatalogue, locale: str, spotted: Sequence[Word],
             transcript: str) -> Classification:
    """The topic of one utterance."""
    spot = catalogue.classify_words([(w.word, w.conf) for w in spotted], locale)
    text = catalogue.classify(transcript, locale)
    if catalogue.is_emergency(text.topic) and not catalogue.is_emergency(spot.topic):
        return text
    return spot if spot.topic is not None else text
