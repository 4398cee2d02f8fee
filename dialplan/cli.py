"""``hotline dialplan --config FILE --out DIR``: write the Asterisk files for this configuration."""

from __future__ import annotations

import sys
from pathlib import Path

from dialplan.common import DialplanError
from dialplan.generate import generate
from ivr.config import HotlineConfig

DEFAULT_SECRET = "change-me"


def cmd_dialplan(config: HotlineConfig, out_dir: Path) -> int:
    """Exit status: 0 written, 1 when the files cannot be made (the reason on stderr)."""
    try:
        written = generate(config, out_dir)
    except DialplanError as e:
        print(f"hotline dialplan: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"hotline dialplan: cannot write to {out_dir}: {e.strerror or e}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    if config.ami.secret == DEFAULT_SECRET:
        print("hotline dialplan: warning: ami.secret is the built-in default; set your own "
              "before deploying manager.conf", file=sys.stderr)
    return 0
