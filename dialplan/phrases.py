"""The sentences of the generated prompts, per language, until the configuration carries its own.

Only the language part of a locale matters here (``ko-KR`` -> ``ko``); a language without a
table is spoken in English, so a prompt still exists for every locale the hotline handles.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Phrases:
    voice: str                 # espeak-ng voice
    welcome: str
    speak_or_press: str        # when the locale is the speech model's: speech and keys
    press: str                 # keys only
    option: str                # one topic: "{label}" and "{key}"
    separator: str             # between options
    end: str                   # after the last option
    agent: str                 # the key that asks for a person: "{key}"
    hold: str                  # queue periodic announcement
    keys: dict[str, str] = field(default_factory=dict)   # how to say "*" and "#"


PHRASES: dict[str, Phrases] = {
    "ko": Phrases(
        voice="ko",
        welcome="안녕하세요. 시민 민원 상담 전화입니다.",
        speak_or_press="문의하실 내용을 말씀하시거나 번호를 눌러 주세요.",
        press="원하시는 번호를 눌러 주세요.",
        option="{label} 문의는 {key}번",
        separator=", ",
        end=".",
        agent="상담원 연결은 {key}번을 눌러 주세요.",
        hold="모든 상담원이 통화 중입니다. 잠시만 기다려 주시면 순서대로 연결해 드리겠습니다.",
        keys={"*": "별표", "#": "우물 정자"},
    ),
    "zh": Phrases(
        voice="cmn",
        welcome="您好，这里是政务服务便民热线。",
        speak_or_press="请直接说出您要反映的问题，或按键选择。",
        press="请按键选择。",
        option="{label}问题请按{key}",
        separator="，",
        end="。",
        agent="人工服务请按{key}。",
        hold="座席正忙，请您稍候，我们将按顺序为您接通。",
        keys={"*": "星号键", "#": "井号键"},
    ),
    "en": Phrases(
        voice="en-us",
        welcome="Hello, you have reached the citizen service hotline.",
        speak_or_press="Please tell us what your call is about, or press a key.",
        press="Please press a key.",
        option="for {label}, press {key}",
        separator="; ",
        end=".",
        agent="To speak to an agent, press {key}.",
        hold="All our agents are busy. Please hold, and we will answer your call in turn.",
        keys={"*": "star", "#": "hash"},
    ),
}


def phrases_for(locale: str) -> Phrases:
    return PHRASES.get(locale.split("-")[0].lower(), PHRASES["en"])
