"""The topic classifier with the shipped catalogue: what a transcript or the spotter's words
mean. zh-CN is exercised through its text (no Chinese model ships with the tests): Vosk's
Chinese models space their output by words or by characters."""

from __future__ import annotations

import pytest

from ivr.config import load_config
from routing.topics import TopicCatalogue
from speech.decoder import Word
from speech.spotting import heard_words, topic_of


@pytest.fixture(scope="module")
def catalogue() -> TopicCatalogue:
    return TopicCatalogue.from_config(load_config(env={}).topics)


@pytest.mark.parametrize("text,topic", [
    ("燃气泄漏了", "gas_leak"), ("燃气 泄漏 了", "gas_leak"), ("燃 气 泄 漏 了", "gas_leak"),
    ("家 里 着 火 了", "fire"), ("停 水 了", "water"), ("交 通 堵 了", "transport"),
])
def test_zh_keywords_match_however_vosk_spaces_the_words(catalogue: TopicCatalogue, text: str,
                                                          topic: str) -> None:
    c = catalogue.classify(text, "zh-CN")
    assert c.topic == topic and c.confidence == 1.0, c


@pytest.mark.parametrize("text,topic", [
    ("停电 了 电线 着火 了", "fire"),               # an ordinary topic named first
    ("燃气 漏气 停电 供暖 都 不行", "gas_leak"),      # three energy words, one emergency
    ("我 要 报警 有人 打架 交通 堵了", "crime"),
])
def test_an_emergency_outweighs_any_ordinary_topic(catalogue: TopicCatalogue, text: str,
                                                   topic: str) -> None:
    assert catalogue.classify(text, "zh-CN").topic == topic


def test_an_emergency_in_the_transcript_wins_over_the_spotters_topic(
        catalogue: TopicCatalogue) -> None:
    """The spotter heard only the power cut; the transcript has the fire too."""
    spotted = [Word("停电", 1.0, 0.2, 0.7)]
    c = topic_of(catalogue, "zh-CN", spotted, "停电 了 电线 着 火 了")
    assert c.topic == "fire"
    # Without an emergency, the spotter decides; the transcript fills in when it heard nothing.
    assert topic_of(catalogue, "zh-CN", spotted, "停 水 了").topic == "energy"
    assert topic_of(catalogue, "zh-CN", [], "停 水 了").topic == "water"


def test_spotted_words_for_competing_topics_or_a_small_share_are_not_trusted(
        catalogue: TopicCatalogue) -> None:
    """The keyword spotter maps any speech onto its words: a water word and a pension word in
    one short answer, or one keyword in seconds of other talk, must not route the caller to a
    department with full confidence (below 0.5 the router sends them to a person)."""
    water = Word("수도", 1.0, 0.30, 0.62)
    alone = topic_of(catalogue, "ko-KR", [water], "", voiced_s=0.8)
    assert alone.topic == "water" and alone.confidence == 1.0
    both = topic_of(catalogue, "ko-KR", [water, Word("연금", 1.0, 0.70, 1.05)], "",
                    voiced_s=1.0)
    assert both.confidence < 0.5, both
    story = topic_of(catalogue, "ko-KR", [water], "", voiced_s=6.0)
    assert story.topic == "water" and story.confidence < 0.5, story
    # A word Vosk itself doubts is not evidence at all.
    doubted = topic_of(catalogue, "ko-KR", heard_words([Word("수도", 0.3, 0.3, 0.6)], True), "")
    assert doubted.topic is None


def test_a_doubtful_emergency_word_does_not_override_a_clear_topic(
        catalogue: TopicCatalogue) -> None:
    """The spotter heard 화재 at 0.6 in the breath before "관리비요": the caller is not sent
    to the fire advice; a fire heard clearly still outweighs the rest."""
    doubtful = [Word("화재", 0.6, 0.03, 0.31), Word("관리비", 1.0, 0.31, 0.84)]
    assert topic_of(catalogue, "ko-KR", doubtful, "").topic == "housing"
    clear = [Word("화재", 0.95, 0.03, 0.31), Word("관리비", 1.0, 0.31, 0.84)]
    assert topic_of(catalogue, "ko-KR", clear, "").topic == "fire"
