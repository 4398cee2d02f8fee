"""Checks that need the whole configuration: every node, prompt, topic, group and menu a menu
names exists; and the list of every prompt the menus use (for the dialplan's WAV generator).

Errors are phrased ``<path>: <reason>`` with the path as the configuration file spells it,
e.g. ``ivr.menus.zh-CN.nodes.greeting.keys.3: node 'status' does not exist``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import NamedTuple

from ivr.menus.model import ActionConfig, MenuConfig

ROOT = "ivr.menus"


class PromptSpec(NamedTuple):
    """One prompt to generate: its Asterisk sound name, locale and the words it says."""
    name: str
    locale: str
    text: str


def _prompt_refs(menu: MenuConfig) -> Iterator[tuple[str, str]]:
    """(path, prompt name) of every prompt the menu plays."""
    for nid, node in menu.nodes.items():
        for i, p in enumerate(node.prompts):
            yield f"nodes.{nid}.prompts.{i}", p
        for key, action in node.keys.items():
            if action.prompt:
                yield f"nodes.{nid}.keys.{key}.prompt", action.prompt
        if node.on_failure.prompt:
            yield f"nodes.{nid}.on_failure.prompt", node.on_failure.prompt
    for field in ("retry_no_input", "retry_invalid"):
        name = getattr(menu, field)
        if name:
            yield field, name
    for topic, em in menu.emergency.items():
        yield f"emergency.{topic}.prompt", em.prompt
    for section, fields in _SECTION_PROMPTS.items():
        part = getattr(menu, section)
        if part is None:
            continue
        for field in fields:
            name = getattr(part, field)
            if name is not None:
                yield f"{section}.{field}", name
    if menu.status is not None:
        for code, name in menu.status.statuses.items():
            yield f"status.statuses.{code}", name


# The prompt-naming fields of each section of a menu.
_SECTION_PROMPTS = {
    "status": ("ask", "not_found", "intro", "deadline", "unknown_status"),
    "message": ("intro", "thanks", "failed"),
    "waiting": ("offer", "confirm"),
    "survey": ("intro", "ask", "thanks", "sorry"),
}


def _actions(menu: MenuConfig) -> Iterator[tuple[str, ActionConfig]]:
    for nid, node in menu.nodes.items():
        for key, action in node.keys.items():
            yield f"nodes.{nid}.keys.{key}", action
        yield f"nodes.{nid}.on_failure", node.on_failure


def menu_errors(menus: Mapping[str, MenuConfig], default_menu: str,
                topics: Mapping[str, bool], groups: set[str]) -> list[str]:
    """Every reference problem, in file order. ``topics``: name -> emergency."""
    errors: list[str] = []
    if not menus:
        return [f"{ROOT}: at least one menu is needed"]
    if default_menu not in menus:
        errors.append(f"ivr.default_menu: menu {default_menu!r} does not exist "
                      f"(menus: {', '.join(menus)})")
    owner: dict[str, str] = {}
    for mid, menu in menus.items():
        at = f"{ROOT}.{mid}"
        for i, number in enumerate(menu.numbers):
            if number in owner:
                errors.append(f"{at}.numbers.{i}: {number!r} already selects menu "
                              f"{owner[number]!r}")
            owner.setdefault(number, mid)
        errors += [f"{at}.{e}" for e in _one_menu(menu, menus, topics, groups)]
    return errors


def _one_menu(menu: MenuConfig, menus: Mapping[str, MenuConfig], topics: Mapping[str, bool],
              groups: set[str]) -> Iterator[str]:
    def node_ref(path: str, node: str | None) -> Iterator[str]:
        if node is not None and node not in menu.nodes:
            yield f"{path}: node {node!r} does not exist"

    yield from node_ref("start", menu.start)
    yield from node_ref("after_hours", menu.after_hours)
    for path, name in _prompt_refs(menu):
        if name not in menu.prompts:
            yield f"{path}: prompt {name!r} does not exist (add it to prompts with its text)"
    for path, a in _actions(menu):
        yield from node_ref(path, a.node)
        if a.topic is not None and a.topic not in topics:
            yield f"{path}: topic {a.topic!r} does not exist"
        elif a.do == "emergency" and a.topic is not None and not topics[a.topic]:
            yield f"{path}: topic {a.topic!r} is not an emergency topic"
        if a.group is not None and a.group not in groups:
            yield f"{path}: group {a.group!r} is not a routing group (no queue for it)"
        if a.menu is not None and a.menu not in menus:
            yield f"{path}: menu {a.menu!r} does not exist"
        needs = {"status": menu.status, "message": menu.message}
        if a.do in needs and needs[a.do] is None:
            yield f"{path}: action {a.do!r} needs the menu's [{a.do}] section"
    for topic in menu.emergency:
        if topic not in topics:
            yield f"emergency.{topic}: topic {topic!r} does not exist"
        elif not topics[topic]:
            yield f"emergency.{topic}: topic {topic!r} is not an emergency topic"
    for topic, emergency in topics.items():
        if emergency and topic not in menu.emergency:
            yield (f"emergency: no action for emergency topic {topic!r} "
                   f"(add [emergency.{topic}] with mode and prompt)")
    if menu.status is not None:
        yield from node_ref("status.then", menu.status.then)
    if menu.after_hours is not None and menu.message is None:
        # Outside the hours the caller leaves a message: that needs the message prompts.
        yield "message: a menu with opening hours needs the [message] section"


def first_menu_error(menus: Mapping[str, MenuConfig], default_menu: str,
                     topics: Mapping[str, bool], groups: set[str]) -> str | None:
    errors = menu_errors(menus, default_menu, topics, groups)
    return errors[0] if errors else None


def menu_prompts(menus: Mapping[str, MenuConfig]) -> list[PromptSpec]:
    """Every prompt of every menu as (sound name, locale, text), sorted; the digits of SAY
    DIGITS as ``digits/0`` ... ``digits/9`` where a menu gives their words. Prompts with
    their own recording (``sound`` without generation) are listed too: the generator may
    skip names that already exist."""
    out: set[PromptSpec] = set()
    for mid, menu in menus.items():
        for name in menu.prompts:
            out.add(PromptSpec(menu.sound_of(mid, name), menu.language, menu.text_of(name)))
        for digit, word in enumerate(menu.digit_words):
            out.add(PromptSpec(f"digits/{digit}", menu.language, word))
    return sorted(out)
