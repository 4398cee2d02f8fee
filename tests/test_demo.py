"""``hotline demo`` as a user runs it: a separate process, JSON summary on the last line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_demo_20_calls_6_agents(tmp_path: Path) -> None:
    # PYTHONPATH: this checkout's code, whatever the installed hotline points at.
    env = {**os.environ, "HOTLINE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'd.db'}",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    r = subprocess.run([sys.executable, "-m", "ivr.cli", "demo", "--calls", "20", "--agents",
                        "6", "--json"], capture_output=True, text=True, timeout=180, env=env,
                       cwd=tmp_path, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["calls"] == 20
    assert summary["cases_created"] == summary["calls"] == (
        summary["answered"] + summary["abandoned"])
    assert summary["errors"] == 0
    assert summary["answered"] > 0 and summary["topic_total"] > 0
    assert summary["topic_correct"] == summary["topic_total"], [   # keys are unambiguous
        line for line in r.stderr.splitlines() if "demo: a caller" in line]
    # Routing on expected wait beats static routing on the same callers (issue: live part).
    assert summary["routing"] == "expected_wait" and summary["asa_s_static"] is not None
    assert summary["asa_s"] <= summary["asa_s_static"]
    # The simulated citizens go through the menus: counts per path, one path per call.
    paths = summary["menu_paths"]
    assert sum(paths.values()) == summary["calls"]
    assert paths.get("topic", 0) > 0 and len(paths) >= 3, paths
    # The cases are in the store for the rest of the centre's tools.
    listed = subprocess.run([sys.executable, "-m", "ivr.cli", "cases", "list", "--today",
                             "--json"], capture_output=True, text=True, timeout=60, env=env,
                            cwd=tmp_path, check=False)
    assert listed.returncode == 0, listed.stderr[-2000:]
    cases = json.loads(listed.stdout)
    assert len(cases) == 20
    assert all(c["caller_masked"].count("*") == 4 for c in cases)
    assert {"number", "status", "topic", "caller_masked"} <= set(cases[0])
