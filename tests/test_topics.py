"""The topic classifier with the shipped catalogue: what a transcript or the spotter's words
mean. zh-CN is exercised through its text (no Chinese model ships with the tests): Vosk's
Chinese models space their output by words or by characters."""

from __future__ import annotations

import pytest

from ivr.config import load_config
from routing.topics import TopicCatalogue
from speech.decoder import Word
from speech.spotting import topic_of


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
