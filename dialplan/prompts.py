"""Which prompts exist, in which locales, with which words, and where their WAV files go.

``config_prompts`` is the single list the generator synthesizes: the greeting
(``ivr.greeting_prompt``, its words composed from the topics and their keys), the queues' hold
announcement (followed by the menu's callback offer where the menu of that language has one)
and every prompt of the IVR menus (``menu_prompts``), with the digits SAY DIGITS speaks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dialplan.common import DialplanError, check_sound_name, sound_dirs
from dialplan.phrases import PHRASES, phrases_for
from ivr.config import HotlineConfig, TopicConfig
from ivr.menus.check import menu_prompts as all_menu_prompts
from ivr.session import HUMAN_KEY

# The queues' periodic announcement (queues.conf ``periodic-announce``).
HOLD_PROMPT = "hotline/hold"
DIGITS = "digits/"


@dataclass(frozen=True, order=True)
class Prompt:
    name: str      # Asterisk sound name, as the menus and queues.conf reference it
    locale: str    # hotline locale, e.g. "ko-KR"
    text: str
    # A menu prompt's name carries its menu (and so its language): the same file goes into
    # every language's directory, so it plays whatever CHANNEL(language) says.
    everywhere: bool = False


def hotline_locales(config: HotlineConfig) -> tuple[str, ...]:
    """Every locale a caller may be greeted in: the service's default, the speech model's and
    every locale the topic catalogue has keywords for."""
    locales = {config.service.locale}
    locales.update(m.language for m in config.ivr.menus.values())
    if config.speech.enabled:
        locales.add(config.speech.locale)
    for topic in config.topics:
        locales.update(topic.keywords)
    return tuple(sorted(locales))


def _label(topic: TopicConfig, locale: str) -> str:
    # A topic is named to the caller by its first keyword in the caller's language; the
    # identifier is the last resort, and the only choice when the sentences around it are
    # the English fallback.
    words = topic.keywords.get(locale, [])
    if words and locale.split("-")[0].lower() in PHRASES:
        return words[0]
    return topic.name.replace("_", " ")


def greeting_text(config: HotlineConfig, locale: str) -> str:
    p = phrases_for(locale)
    heard = config.speech.enabled and locale == config.speech.locale
    options = [p.option.format(label=_label(t, locale), key=p.keys.get(t.key, t.key))
               for t in sorted(config.topics, key=lambda t: t.key or "")
               if t.key is not None]
    parts = [p.welcome, p.speak_or_press if heard else p.press]
    if options:
        parts.append(p.separator.join(options) + p.end)
    parts.append(p.agent.format(key=HUMAN_KEY))
    return " ".join(parts)


def menu_prompts(config: HotlineConfig) -> Iterable[Prompt]:
    """Prompts of the IVR menus (``hotline/<menu>/<prompt>``), in every language directory."""
    for spec in all_menu_prompts(config.ivr.menus):
        if not spec.name.startswith(DIGITS):
            check_sound_name(spec.name, f"ivr.menus prompt {spec.name!r}")
            yield Prompt(spec.name, spec.locale, spec.text, everywhere=True)


def digit_sounds(config: HotlineConfig) -> tuple[Prompt, ...]:
    """The words SAY DIGITS speaks (``digits/0`` ... ``digits/9``) in each menu's language
    that gives them (``digit_words``): Asterisk ships them for its core languages only. Single
    words, so shorter than the prompts."""
    return tuple(sorted(Prompt(s.name, s.locale, s.text)
                        for s in all_menu_prompts(config.ivr.menus)
                        if s.name.startswith(DIGITS)))


def hold_text(config: HotlineConfig, locale: str) -> str:
    """The queues' periodic announcement: please hold, then the callback offer of the menu
    in this language (its key leaves the queue, see ``ivr.menus.waiting``)."""
    text = phrases_for(locale).hold
    for menu in config.ivr.menus.values():
        if menu.language == locale and menu.waiting is not None:
            return f"{text} {menu.text_of(menu.waiting.offer)}"
    return text


def config_prompts(config: HotlineConfig) -> tuple[Prompt, ...]:
    """Every prompt the configuration references, in every locale, sorted."""
    greeting = check_sound_name(config.ivr.greeting_prompt, "ivr.greeting_prompt")
    prompts = list(menu_prompts(config))
    for locale in hotline_locales(config):
        prompts.append(Prompt(greeting, locale, greeting_text(config, locale)))
        prompts.append(Prompt(HOLD_PROMPT, locale, hold_text(config, locale)))
    seen: dict[tuple[str, str], str] = {}
    for p in prompts:
        # One file per (name, locale): two different texts for it would silently lose one.
        if seen.setdefault((p.name, p.locale), p.text) != p.text:
            raise DialplanError(f"prompt {p.name!r} ({p.locale}) is given two different texts")
    return tuple(sorted(set(prompts)))


def prompt_files(config: HotlineConfig, prompts: Iterable[Prompt]) -> dict[str, Prompt]:
    """Relative output path -> prompt. ``sounds/<lang>/<name>.wav`` for each locale (Asterisk
    picks it by CHANNEL(language)) and ``sounds/<name>.wav`` in the service's default locale,
    which Asterisk plays when the channel's language has no file of its own."""
    prompts = list(prompts)
    dirs = sound_dirs(p.locale for p in prompts)
    files: dict[str, Prompt] = {}
    for p in prompts:
        check_sound_name(p.name, f"prompt {p.name!r}")
        for d in (set(dirs.values()) if p.everywhere else {dirs[p.locale]}):
            files[f"sounds/{d}/{p.name}.wav"] = p
        if p.locale == config.service.locale or p.everywhere:
            files[f"sounds/{p.name}.wav"] = p
    return dict(sorted(files.items()))
