"""``${...}`` substitution and ``$[...]`` expressions with Asterisk's operators and precedence."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

log = logging.getLogger("pbxsim.expr")

Resolver = Callable[[str], str]


class ExprError(ValueError):
    pass


def _matching(text: str, start: int, open_tok: str, close_ch: str) -> int:
    """Index of the char closing the construct whose body starts at ``start``; -1 if none."""
    depth = 1
    i = start
    while i < len(text):
        if text.startswith(open_tok, i):
            depth += 1
            i += len(open_tok)
            continue
        if close_ch == "]" and text[i] == "[":
            depth += 1
        elif text[i] == close_ch:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _apply_offset(name: str, resolve: Resolver) -> str:
    # ${VAR:offset:length}; functions (ending with ')') never take offsets here.
    if name.endswith(")") or ":" not in name:
        return resolve(name)
    base, _, spec = name.partition(":")
    value = resolve(base)
    off_s, _, len_s = spec.partition(":")
    try:
        off = int(off_s or 0)
        length = int(len_s) if len_s else None
    except ValueError:
        return value
    if off < 0:
        off = max(0, len(value) + off)
    sub = value[off:]
    if length is not None:
        sub = sub[:length] if length >= 0 else sub[:max(0, len(sub) + length)]
    return sub


def substitute(text: str, resolve: Resolver) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("${", i):
            end = _matching(text, i + 2, "${", "}")
            if end < 0:
                out.append(text[i:])
                break
            inner = substitute(text[i + 2:end], resolve)
            out.append(_apply_offset(inner, resolve))
            i = end + 1
        elif text.startswith("$[", i):
            end = _matching(text, i + 2, "$[", "]")
            if end < 0:
                out.append(text[i:])
                break
            inner = substitute(text[i + 2:end], resolve)
            try:
                out.append(evaluate(inner))
            except ExprError as exc:
                log.warning("expression %r: %s", inner, exc)
                out.append("")
            i = end + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


_TOKEN = re.compile(r'\s*(?:("(?:[^"\\]|\\.)*")'        # a quoted string
                    r'|(::|=~|==|!=|<=|>=|[|&=<>+\-*/%!:?()])'  # an operator
                    r'|([^\s|&=<>+\-*/%!:?()"]+))')           # a bare word or number


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ExprError(f"cannot tokenize at {text[pos:]!r}")
        if m.group(1) is not None:
            tokens.append(("val", m.group(1)[1:-1]))
        elif m.group(2) is not None:
            tokens.append(("op", m.group(2)))
        elif m.group(3) is not None:
            tokens.append(("val", m.group(3)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return tokens


def _num(v: str) -> float | None:
    try:
        return float(v.strip())
    except ValueError:
        return None


def _fmt(x: float) -> str:
    if x == int(x) and abs(x) < 1e18:
        return str(int(x))
    return format(x, ".15g")


def is_true(v: str) -> bool:
    v = v.strip()
    if v == "":
        return False
    n = _num(v)
    return n != 0 if n is not None else True


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.toks = tokens
        self.i = 0

    def peek(self) -> str | None:
        if self.i < len(self.toks) and self.toks[self.i][0] == "op":
            return self.toks[self.i][1]
        return None

    def take(self) -> tuple[str, str]:
        if self.i >= len(self.toks):
            raise ExprError("unexpected end of expression")
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def parse(self) -> str:
        value = self.ternary()
        if self.i != len(self.toks):
            raise ExprError(f"unexpected token {self.toks[self.i][1]!r}")
        return value

    def ternary(self) -> str:
        cond = self.binary(0)
        if self.peek() == "?":
            self.take()
            yes = self.ternary()
            if self.peek() != "::":
                raise ExprError("'?' without '::'")
            self.take()
            no = self.ternary()
            return yes if is_true(cond) else no
        return cond

    _LEVELS: tuple[tuple[str, ...], ...] = (
        ("|",), ("&",), ("=", "==", "!=", "<", ">", "<=", ">="), ("+", "-"), ("*", "/", "%"))

    def binary(self, level: int) -> str:
        if level == len(self._LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while (op := self.peek()) in self._LEVELS[level]:
            self.take()
            right = self.binary(level + 1)
            left = _binop(op, left, right)
        return left

    def unary(self) -> str:
        op = self.peek()
        if op == "!":
            self.take()
            return "0" if is_true(self.unary()) else "1"
        if op == "-":
            self.take()
            n = _num(self.unary())
            if n is None:
                raise ExprError("non-numeric argument to '-'")
            return _fmt(-n)
        return self.colon()

    def colon(self) -> str:
        left = self.primary()
        while (op := self.peek()) in (":", "=~"):
            self.take()
            pattern = self.primary()
            m = (re.match if op == ":" else re.search)(pattern, left)
            if m is None:
                left = "" if m is None and "(" in pattern else "0"
            elif m.groups():
                left = m.group(1) or ""
            else:
                left = str(m.end() - m.start())
        return left

    def primary(self) -> str:
        kind, value = self.take()
        if kind == "op":
            if value == "(":
                inner = self.ternary()
                if self.peek() != ")":
                    raise ExprError("missing ')'")
                self.take()
                return inner
            raise ExprError(f"unexpected operator {value!r}")
        return value


def _binop(op: str, a: str, b: str) -> str:
    if op == "|":
        return a if is_true(a) else b
    if op == "&":
        return a if is_true(a) and is_true(b) else "0"
    na, nb = _num(a), _num(b)
    if op in ("=", "==", "!=", "<", ">", "<=", ">="):
        left: float | str = na if na is not None and nb is not None else a
        right: float | str = nb if na is not None and nb is not None else b
        result = {
            "=": left == right, "==": left == right, "!=": left != right,
            "<": left < right, ">": left > right,  # type: ignore[operator]
            "<=": left <= right, ">=": left >= right,  # type: ignore[operator]
        }[op]
        return "1" if result else "0"
    if na is None or nb is None:
        raise ExprError(f"non-numeric argument to {op!r}")
    if op == "+":
        return _fmt(na + nb)
    if op == "-":
        return _fmt(na - nb)
    if op == "*":
        return _fmt(na * nb)
    if nb == 0:
        raise ExprError("division by zero")
    if op == "/":
        return _fmt(na / nb)
    return _fmt(na % nb)


def evaluate(text: str) -> str:
    """Evaluate the body of a ``$[...]``."""
    tokens = _tokenize(text)
    if not tokens:
        return ""
    return _Parser(tokens).parse()


def split_args(text: str, sep: str = ",") -> list[str]:
    """Application arguments: split on ``sep`` outside quotes and parentheses."""
    args: list[str] = []
    cur: list[str] = []
    depth = 0
    quote = False
    for ch in text:
        if ch == '"':
            quote = not quote
        elif not quote and ch in "([":
            depth += 1
        elif not quote and ch in ")]" and depth > 0:
            depth -= 1
        if ch == sep and depth == 0 and not quote:
            args.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    args.append("".join(cur))
    return args
