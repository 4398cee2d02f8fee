"""``python -m bench.console`` is ``python -m bench.screenpop`` (the issue's name for it):
screen-pop and board delivery with 100 operators connected over websockets."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.screenpop import main

if __name__ == "__main__":
    main()
