"""Text in Chinese, Japanese and Korean: where spaces between words mean little.

Vosk's Chinese models put a space between words or between characters ('燃 气 泄 漏 了'), a
transcript of Korean spaces words loosely ('마을 버스' for '마을버스'), and a keyword split
into the words a model knows comes back as those words. Matching such text against keywords
therefore ignores whitespace in these languages. Other languages keep their word spacing.
"""

from __future__ import annotations

# Language subtags (the part of a locale before '-') whose text is matched without spaces.
CJK_LANGUAGES = frozenset({"zh", "ja", "ko", "yue", "wuu"})

# Unicode blocks of CJK scripts: Hangul syllables and jamo, kana, Han ideographs (with
# extension A and the compatibility block); enough to tell a CJK word from a Latin one.
_CJK_RANGES = (
    (0x1100, 0x11FF), (0x3040, 0x30FF), (0x3130, 0x318F), (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF), (0xAC00, 0xD7AF), (0xF900, 0xFAFF),
)


def is_cjk_locale(locale: str) -> bool:
    return locale.split("-", 1)[0].lower() in CJK_LANGUAGES


def is_cjk_char(ch: str) -> bool:
    code = ord(ch)
    return any(lo <= code <= hi for lo, hi in _CJK_RANGES)


def is_cjk_word(word: str) -> bool:
    """True when every character of ``word`` is of a CJK script (and it is not empty)."""
    return bool(word) and all(is_cjk_char(ch) for ch in word)


def normalize(text: str, locale: str) -> str:
    """``text`` as keywords are matched in ``locale``: without whitespace in CJK languages,
    else with runs of whitespace as one space."""
    parts = text.split()
    return "".join(parts) if is_cjk_locale(locale) else " ".join(parts)
