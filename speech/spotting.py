"""The topic of what a caller said, from the keyword spotter's words and the transcript.

The spotter (a grammar of the keywords) decides the topic; the free transcript, when there is
one, is read as well: an emergency in either wins (the spotter can miss a word the
transcript has, and a caller who mentions a fire among other things must not be queued for
the other things), else the spotter's topic, else the transcript's.

A keyword grammar maps whatever is said onto its words: "여보세요", a cough or a noisy line
come out as some keyword, often with Vosk's full confidence. So what the spotter hears is
weighed before it decides anything: nothing counts when the energy detector heard no voice;
a word Vosk gives less than even odds is no evidence; words pointing at competing topics
lower the confidence (``TopicCatalogue.classify_words``), and so do keywords that make up
only a small share of the voice heard. A low confidence sends the caller to a person rather
than a guessed department. The words meaning "a person" are in the grammar too, so a caller
asking for one is heard even without a transcript.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

from routing.topics import Classification, TopicCatalogue
from speech.decoder import Word

# A spotted word Vosk itself gives less than even odds (its lattice posterior) is no evidence:
# a keyword grammar maps other speech onto some keyword, mostly with a low confidence
# (measured: 가스누출 at 0.37 in '마을버스 문의'), and an emergency heard must win outright.
MIN_WORD_CONF = 0.5
# Keywords spoken for less than this share of the voiced time only partly explain what was
# said: the confidence falls in proportion ("하수도" is ~40% of its utterance, a keyword
# in a ten-second story a few percent).
MIN_KEYWORD_SHARE = 0.25


@dataclass(frozen=True, slots=True)
class Expect:
    """What a caller may say at one menu step: the spotter listens for these words only, and
    only these topics may come of it (an emergency menu takes emergencies, nothing else)."""

    topics: frozenset[str] | None = None      # None: every topic of the catalogue
    person_words: tuple[str, ...] = ()        # the menu's words for "a person, please"

    def grammar_words(self, catalogue: TopicCatalogue, locale: str) -> list[str]:
        """The spotter's words (``SpeechEngine.grammar`` makes them a grammar)."""
        words = catalogue.keywords(locale, self.topics)
        return words + [w for w in self.person_words if w.strip() and w not in words]


ANYTHING = Expect()


def heard_words(spotted: Sequence[Word], voice: bool) -> list[Word]:
    """The spotted words that count: none without a voice, none Vosk doubts."""
    return [w for w in spotted if w.conf >= MIN_WORD_CONF] if voice else []


def topic_of(catalogue: TopicCatalogue, locale: str, spotted: Sequence[Word], transcript: str,
             *, accept: Collection[str] | None = None,
             voiced_s: float | None = None) -> Classification:
    """The topic of one utterance; ``spotted``: the words that count (``heard_words``);
    ``accept``: the topics that may be chosen (None: all); ``voiced_s``: how long the voice
    was heard (the energy detector), against which the keywords' own time is weighed."""
    spot = catalogue.classify_words([(w.word, w.conf) for w in spotted], locale, accept=accept)
    if spot.topic is not None and voiced_s:
        # Every word of the grammar that was heard explains that much of the voice.
        share = sum(max(0.0, w.end - w.start) for w in spotted) / voiced_s
        if share < MIN_KEYWORD_SHARE:
            spot = replace(spot, confidence=round(spot.confidence * share / MIN_KEYWORD_SHARE,
                                                  3))
    text = catalogue.classify(transcript, locale, accept=accept)
    if catalogue.is_emergency(text.topic) and not catalogue.is_emergency(spot.topic):
        return text
    return spot if spot.topic is not None else text
