"""Topic catalogue: what a caller may need, how they say it, and which groups can handle it.

The classifier is deliberately simple and explainable (keyword spotting per locale): an admin
tuning the catalogue can see exactly which words decided a topic. Low confidence means the
caller goes to the general group rather than a guessed one.
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.config import TopicConfig


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    key: str | None
    groups: tuple[str, ...]          # preference order: the first is the primary skill group
    keywords: dict[str, tuple[str, ...]]
    emergency: bool = False


@dataclass(frozen=True, slots=True)
class Classification:
    topic: str | None                 # None: nothing recognised
    confidence: float                 # 0..1
    keywords: tuple[str, ...]         # the words that decided it
    source: str                       # "key", "speech" or "none"


class TopicCatalogue:
    def __init__(self, topics: list[Topic]) -> None:
        self._topics = {t.name: t for t in topics}
        self._by_key = {t.key: t for t in topics if t.key}

    @classmethod
    def from_config(cls, topics: list[TopicConfig]) -> TopicCatalogue:
        return cls([
            Topic(t.name, t.key, tuple(t.groups),
                  {loc: tuple(words) for loc, words in t.keywords.items()}, t.emergency)
            for t in topics
        ])

    def __contains__(self, name: object) -> bool:
        return name in self._topics

    def get(self, name: str) -> Topic:
        return self._topics[name]

    @property
    def topics(self) -> list[Topic]:
        return list(self._topics.values())

    def keywords(self, locale: str) -> list[str]:
        """Every keyword of a locale, for building a speech grammar."""
        seen: dict[str, None] = {}
        for t in self._topics.values():
            for w in t.keywords.get(locale, ()):
                seen.setdefault(w, None)
        return list(seen)

    def by_key(self, digit: str) -> Classification:
        t = self._by_key.get(digit)
        if t is None:
            return Classification(None, 0.0, (), "none")
        return Classification(t.name, 1.0, (), "key")

    def classify(self, text: str, locale: str) -> Classification:
        """Topic of a transcript: the topic whose keywords cover most of what was matched."""
        text = text.strip()
        if not text:
            return Classification(None, 0.0, (), "none")
        scores: dict[str, list[str]] = {}
        for t in self._topics.values():
            hits = [w for w in t.keywords.get(locale, ()) if w and w in text]
            if hits:
                scores[t.name] = hits
        if not scores:
            return Classification(None, 0.0, (), "speech")
        total = sum(sum(len(w) for w in hits) for hits in scores.values())
        best = max(scores, key=lambda n: (sum(len(w) for w in scores[n]), -list(self._topics).index(n)))
        conf = sum(len(w) for w in scores[best]) / total
        return Classification(best, round(conf, 3), tuple(scores[best]), "speech")
