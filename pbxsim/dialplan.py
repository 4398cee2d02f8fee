"""The subset of extensions.conf the hotline uses, parsed into contexts, extensions and steps.

Supported: ``[context]``, ``exten => name,prio[(label)],App(args)``, ``same => n[(label)],...``,
``include => other``, ``[globals]`` assignments, ``;`` comments and Asterisk's ``_`` patterns
(X, Z, N, ``[a-c1-3]``, ``.`` and ``!``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

log = logging.getLogger("pbxsim.dialplan")

_PRIO = re.compile(r"^\s*(\d+|n|hint)\s*(?:\(([^)]*)\))?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Step:
    priority: int
    label: str | None
    app: str
    args: str


@dataclass
class Extension:
    name: str
    steps: dict[int, Step] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)
    last_priority: int = 0


@dataclass
class Context:
    name: str
    extensions: dict[str, Extension] = field(default_factory=dict)
    includes: list[str] = field(default_factory=list)


def _strip_comment(line: str) -> str:
    out = []
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line) and line[i + 1] == ";":
            out.append(";")
            i += 2
            continue
        if ch == ";":
            break
        out.append(ch)
        i += 1
    return "".join(out).strip()


def split_app(text: str) -> tuple[str, str]:
    """``App(args)`` -> (App, args); ``App`` alone -> (App, "")."""
    text = text.strip()
    paren = text.find("(")
    if paren < 0:
        name, _, args = text.partition(",")
        return name.strip(), args
    name = text[:paren].strip()
    args = text[paren + 1:]
    args = args.removesuffix(")")
    return name, args


def pattern_matches(pattern: str, exten: str) -> bool:
    if not pattern.startswith("_"):
        return pattern == exten
    regex = []
    body = pattern[1:]
    i = 0
    while i < len(body):
        ch = body[i]
        up = ch.upper()
        if up == "X":
            regex.append("[0-9]")
        elif up == "Z":
            regex.append("[1-9]")
        elif up == "N":
            regex.append("[2-9]")
        elif ch == ".":
            regex.append(".+")
        elif ch == "!":
            regex.append(".*")
        elif ch == "[":
            end = body.find("]", i)
            if end < 0:
                regex.append(re.escape(ch))
            else:
                regex.append("[" + body[i + 1:end].replace("\\", "\\\\") + "]")
                i = end
        else:
            regex.append(re.escape(ch))
        i += 1
    return re.fullmatch("".join(regex), exten) is not None


class Dialplan:
    def __init__(self) -> None:
        self.contexts: dict[str, Context] = {}
        self.globals: dict[str, str] = {}

    @classmethod
    def parse(cls, text: str) -> Dialplan:
        plan = cls()
        section: str | None = None
        last_ext: Extension | None = None
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = _strip_comment(raw)
            if not line:
                continue
            if line.startswith("[") and "]" in line:
                section = line[1:line.index("]")].strip()
                last_ext = None
                if section not in ("general", "globals"):
                    plan.contexts.setdefault(section, Context(section))
                continue
            if section is None or section == "general":
                continue
            key, sep, value = line.partition("=>")
            if not sep:
                key, sep, value = line.partition("=")
            key, value = key.strip(), value.strip()
            if section == "globals":
                plan.globals[key] = value
                continue
            ctx = plan.contexts[section]
            low = key.lower()
            if low == "include":
                ctx.includes.append(value)
            elif low == "exten":
                name, _, rest = value.partition(",")
                ext = ctx.extensions.setdefault(name.strip(), Extension(name.strip()))
                last_ext = plan._add_step(ext, rest, lineno)
            elif low == "same" and last_ext is not None:
                plan._add_step(last_ext, value, lineno)
            else:
                log.warning("dialplan line %d ignored: %s", lineno, raw.strip())
        return plan

    @staticmethod
    def _add_step(ext: Extension, rest: str, lineno: int) -> Extension:
        prio_text, _, app_text = rest.partition(",")
        m = _PRIO.match(prio_text)
        if m is None:
            log.warning("dialplan line %d: bad priority %r", lineno, prio_text)
            return ext
        if m.group(1).lower() == "hint":
            return ext
        prio = ext.last_priority + 1 if m.group(1).lower() == "n" else int(m.group(1))
        label = m.group(2) or None
        app, args = split_app(app_text)
        ext.steps[prio] = Step(prio, label, app, args)
        ext.last_priority = prio
        if label:
            ext.labels[label] = prio
        return ext

    def find_extension(self, context: str, exten: str, _seen: frozenset[str] = frozenset()
                       ) -> Extension | None:
        ctx = self.contexts.get(context)
        if ctx is None or context in _seen:
            return None
        ext = ctx.extensions.get(exten)
        if ext is not None:
            return ext
        for name, candidate in ctx.extensions.items():
            if name.startswith("_") and pattern_matches(name, exten):
                return candidate
        for inc in ctx.includes:
            found = self.find_extension(inc, exten, _seen | {context})
            if found is not None:
                return found
        return None

    def exists(self, context: str, exten: str, priority: int = 1) -> bool:
        ext = self.find_extension(context, exten)
        return ext is not None and priority in ext.steps

    def resolve_priority(self, context: str, exten: str, prio: str) -> int | None:
        """A numeric priority or a label of that extension; None if neither."""
        prio = prio.strip()
        if prio.isdigit():
            return int(prio)
        ext = self.find_extension(context, exten)
        if ext is None:
            return None
        return ext.labels.get(prio)
