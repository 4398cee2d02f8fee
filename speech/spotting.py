"""The topic of what a caller said, from the keyword spotter's words and the transcript.

The spotter (a grammar of the keywords) decides the topic; the free transcript, when there is
one, is read as well: an emergency in either wins (the spotter can miss a word the
transcript has, and a caller who mentions a fire among other things must not be queued for
the other things), else the spotter's topic, else the transcript's.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from routing.topics import Classification, TopicCatalogue
from speech.decoder import Word

# A spotted word Vosk itself gives less than even odds (its lattice posterior) is no evidence:
# a keyword grammar maps other speech onto some keyword, mostly with a low confidence
# (measured: 가스누출 at 0.37 in '마을버스 문의'), and an emergency heard must win outright.
MIN_WORD_CONF = 0.5


@dataclass(frozen=True, slots=True)
class Expect:
    """What a caller may say at one menu step: the spotter listens for these words only, and
    only these topics may come of it (an emergency menu takes emergencies, nothing else)."""

    topics: frozenset[str] | None = None      # None: every topic of the catalogue

    def grammar_words(self, catalogue: TopicCatalogue, locale: str) -> list[str]:
        """The spotter's words (``SpeechEngine.grammar`` makes them a grammar)."""
        return catalogue.keywords(locale, self.topics)


ANYTHING = Expect()


def topic_of(catalogue: TopicCatalogue, locale: str, spotted: Sequence[Word], transcript: str,
             *, accept: Collection[str] | None = None) -> Classification:
    """The topic of one utterance; ``accept``: the topics that may be chosen (None: all)."""
    heard = [(w.word, w.conf) for w in spotted if w.conf >= MIN_WORD_CONF]
    spot = catalogue.classify_words(heard, locale, accept=accept)
    text = catalogue.classify(transcript, locale, accept=accept)
    if catalogue.is_emergency(text.topic) and not catalogue.is_emergency(spot.topic):
        return text
    return spot if spot.topic is not None else text
