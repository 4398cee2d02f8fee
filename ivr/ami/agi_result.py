"""AGI result lines ("200 result=2", "200 result=1 (13800138000)", "510 Invalid ...")."""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE = re.compile(r"^(?P<code>\d{3})[ -]?(?P<rest>.*)$", re.DOTALL)
_RESULT = re.compile(r"result=(?P<value>\S*)(?:\s*\((?P<data>.*)\))?")


@dataclass(frozen=True, slots=True)
class AgiResult:
    code: int            # 200 ok, 510 invalid command, 511 dead channel, 520 usage
    result: str          # the value after result= ("" when absent)
    data: str            # the text in parentheses, e.g. a variable's value or "timeout"
    raw: str

    @property
    def ok(self) -> bool:
        return self.code == 200

    @property
    def value(self) -> int | None:
        try:
            return int(self.result)
        except ValueError:
            return None


def parse_agi_result(raw: str) -> AgiResult:
    line = raw.strip()
    m = _LINE.match(line)
    if not m:
        return AgiResult(0, "", "", raw)
    code = int(m.group("code"))
    rm = _RESULT.search(m.group("rest"))
    if not rm:
        return AgiResult(code, "", m.group("rest").strip(), raw)
    return AgiResult(code, rm.group("value"), (rm.group("data") or "").strip(), raw)
