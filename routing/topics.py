"""Topic catalogue: what a caller may need, how they say it, and which groups can handle it.

The classifier is deliberately simple and explainable (keyword spotting per locale): an admin
tuning the catalogue can see exactly which words decided a topic. Low confidence means the
caller goes to the general group rather than a guessed one.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from ivr.config import TopicConfig
from routing.cjk import is_cjk_locale, normalize


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


# An emergency word outweighs every ordinary topic when the recogniser is fairly sure of it
# (a transcript's words always are); a doubtful one only competes like any other word. The
# keyword spotter maps other sounds onto its words too (measured: 화재 at 0.58-0.63 for the
# breath before "관리비요"), and a false emergency sends an ordinary caller to the advice.
EMERGENCY_WINS_AT = 0.7


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

    def is_emergency(self, name: str | None) -> bool:
        t = self._topics.get(name) if name is not None else None
        return t is not None and t.emergency

    def keywords(self, locale: str, topics: Collection[str] | None = None) -> list[str]:
        """Every keyword of a locale (of ``topics`` only, if given), for a speech grammar."""
        seen: dict[str, None] = {}
        for t in self._topics.values():
            if topics is None or t.name in topics:
                for w in t.keywords.get(locale, ()):
                    seen.setdefault(w, None)
        return list(seen)

    def by_key(self, digit: str) -> Classification:
        t = self._by_key.get(digit)
        if t is None:
            return Classification(None, 0.0, (), "none")
        return Classification(t.name, 1.0, (), "key")

    def classify(self, text: str, locale: str, *,
                 accept: Collection[str] | None = None) -> Classification:
        """Topic of a transcript (every word weighs the same); see ``classify_words``."""
        return self.classify_words([(w, 1.0) for w in text.split()], locale, accept=accept)

    def classify_words(self, words: Sequence[tuple[str, float]], locale: str, *,
                       accept: Collection[str] | None = None) -> Classification:
        """Topic of recognised words, each with the recogniser's confidence in it (0..1).

        Keywords are found in the words joined (in CJK languages without spaces, so
        '燃 气 泄 漏' holds 燃气泄漏); where keywords overlap the longest counts ('가스누출' is
        gas_leak, not the energy word '가스'). Each match weighs its words' mean confidence.
        An emergency heard (surely enough: ``EMERGENCY_WINS_AT``) wins over ordinary topics:
        a caller who mentions a fire while talking about a power cut must get the emergency
        handling. Among the rest, the topic with the most weight wins (among equals, the one
        named first); its confidence is its lead over the runner-up, as a share of all the
        weight matched, so words pointing at competing topics give a low confidence (the
        router then sends the caller to a person). ``accept``: the only topics that may be
        chosen (None: all).
        """
        text, weight = _joined(words, locale)
        if not text:
            return Classification(None, 0.0, (), "none")
        found: list[tuple[int, int, Topic, str]] = []
        for t in self._topics.values():
            if accept is not None and t.name not in accept:
                continue
            for kw in t.keywords.get(locale, ()):
                k = normalize(kw, locale)
                start = text.find(k) if k else -1
                while start >= 0:
                    found.append((start, start + len(k), t, kw))
                    start = text.find(k, start + 1)
        taken: list[tuple[int, int, Topic, str]] = []
        for m in sorted(found, key=lambda m: (m[0] - m[1], m[0])):      # longest first
            if all(m[1] <= o[0] or o[1] <= m[0] for o in taken):
                taken.append(m)
        if any(t.emergency and _weight(weight, m0, m1) >= EMERGENCY_WINS_AT
               for m0, m1, t, _ in taken):
            taken = [m for m in taken if m[2].emergency]
        scores: dict[str, float] = {}     # insertion order: the order the topics were heard
        hits: dict[str, list[str]] = {}
        for start, end, t, kw in sorted(taken, key=lambda m: m[0]):
            scores[t.name] = scores.get(t.name, 0.0) + _weight(weight, start, end)
            hits.setdefault(t.name, []).append(kw)
        if not scores:
            return Classification(None, 0.0, (), "speech")
        # Equal weight: the topic named first (callers say what happened before the rest,
        # "화재 신고합니다"); sorted() keeps that order among equals.
        ranked = sorted(scores, key=lambda n: -scores[n])
        best = ranked[0]
        runner_up = scores[ranked[1]] if len(ranked) > 1 else 0.0
        total = sum(scores.values())
        conf = (scores[best] - runner_up) / total if total > 0 else 0.0
        return Classification(best, round(conf, 3), tuple(dict.fromkeys(hits[best])), "speech")


def _weight(weight: list[float], start: int, end: int) -> float:
    """A match's weight: the mean confidence of the characters it covers."""
    return sum(weight[start:end]) / (end - start)


def _joined(words: Sequence[tuple[str, float]], locale: str) -> tuple[str, list[float]]:
    """The words as one normalized string, and each character's weight (its word's)."""
    sep = "" if is_cjk_locale(locale) else " "
    text: list[str] = []
    weight: list[float] = []
    for word, conf in words:
        w = normalize(word, locale)
        if not w:
            continue
        if text and sep:
            text.append(sep)
            weight.append(0.0)
        text.append(w)
        weight.extend([max(0.0, min(1.0, conf))] * len(w))
    return "".join(text), weight
