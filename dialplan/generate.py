"""From one configuration to every Asterisk file the hotline needs, byte for byte reproducible."""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dialplan.extensions import render_extensions
from dialplan.manager import render_manager
from dialplan.phrases import phrases_for
from dialplan.prompts import HOLD_PROMPT, Prompt, config_prompts, digit_sounds, prompt_files
from dialplan.queues import penalty_rules, render_queuerules, render_queues
from dialplan.synth import synthesize_wav
from ivr.config import HotlineConfig

MANAGER_FILE = "manager.conf"
# Files holding a secret are readable by their owner only.
PRIVATE = frozenset({MANAGER_FILE})


def build_text(config: HotlineConfig) -> dict[str, bytes]:
    """The configuration files (no audio): relative path -> bytes."""
    rules = penalty_rules(config)
    files = {
        "extensions.conf": render_extensions(config),
        "queues.conf": render_queues(config, HOLD_PROMPT, rules),
        MANAGER_FILE: render_manager(config),
    }
    if rules:
        files["queuerules.conf"] = render_queuerules(rules)
    return {name: text.encode("utf-8") for name, text in sorted(files.items())}


def build_audio(config: HotlineConfig) -> dict[str, bytes]:
    """Every prompt as WAV: relative path -> bytes."""
    prompts = config_prompts(config) + digit_sounds(config)
    files = prompt_files(config, prompts)

    def synth(p: Prompt) -> bytes:
        return synthesize_wav(p.text, phrases_for(p.locale).voice)

    # espeak-ng and sox are separate processes: a few in parallel, results in input order.
    with ThreadPoolExecutor(max_workers=4) as pool:
        audio = dict(zip(prompts, pool.map(synth, prompts), strict=True))
    return {path: audio[p] for path, p in files.items()}


def build(config: HotlineConfig) -> dict[str, bytes]:
    return dict(sorted({**build_text(config), **build_audio(config)}.items()))


def write(files: Mapping[str, bytes], out_dir: Path) -> list[Path]:
    """Write each file whole (a temporary beside it, then rename), so an Asterisk reloading
    meanwhile reads the old file or the new one, never half of one."""
    written = []
    for name, data in sorted(files.items()):
        path = out_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                     0o600 if name in PRIVATE else 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        written.append(path)
    return written


def generate(config: HotlineConfig, out_dir: Path) -> list[Path]:
    return write(build(config), out_dir)
