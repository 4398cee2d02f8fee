"""The ``hotline`` command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from cases.errors import SecretKeyMismatch
from ivr.config import ConfigError, HotlineConfig, load_config

if TYPE_CHECKING:
    from ivr.ami.link import AmiLink

log = logging.getLogger("hotline.cli")


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                   help="TOML configuration merged over the built-in defaults")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hotline", description=__doc__)
    _add_config(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the service against a real Asterisk")
    _add_config(serve)

    demo = sub.add_parser("demo", help="run the whole service against the simulated Asterisk")
    _add_config(demo)
    demo.add_argument("--calls", type=int, default=20, help="simulated calls (default 20)")
    demo.add_argument("--agents", type=int, default=6, help="simulated agents (default 6)")
    demo.add_argument("--speed", type=float, default=30.0,
                      help="simulated clock speed, x real time (default 30)")
    demo.add_argument("--seed", type=int, default=1, help="random seed of the callers")
    demo.add_argument("--json", action="store_true",
                      help="print the summary as one JSON object on the last line")
    demo.add_argument("--serve", action="store_true",
                      help="keep the service and its web app running until interrupted")

    cfg = sub.add_parser("config", help="configuration tools")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True)
    check = cfg_sub.add_parser("check", help="validate a configuration file")
    check.add_argument("file", metavar="FILE")

    dp = sub.add_parser("dialplan", help="generate Asterisk configuration and prompts")
    _add_config(dp)
    dp.add_argument("--out", metavar="DIR", required=True, help="directory to write into")

    sp = sub.add_parser("speech", help="speech recognition tools")
    sp_sub = sp.add_subparsers(dest="speech_command", required=True)
    sp_check = sp_sub.add_parser("check", help="load the model and recognise a phrase "
                                 "synthesized with espeak-ng")
    _add_config(sp_check)
    sp_tr = sp_sub.add_parser("transcribe", help="transcript, keywords and topic of a WAV file")
    _add_config(sp_tr)
    sp_tr.add_argument("file", metavar="FILE.wav")
    sp_tr.add_argument("--locale", metavar="L", help="topic keywords of this locale "
                       "(default: speech.locale, the model's language)")
    sp_tr.add_argument("--json", action="store_true",
                       help="one object with text, keywords, topic, confidence")

    cases = sub.add_parser("cases", help="case records")
    cases_sub = cases.add_subparsers(dest="cases_command", required=True)
    lst = cases_sub.add_parser("list", help="list cases")
    _add_config(lst)
    lst.add_argument("--today", action="store_true", help="only today's cases (centre time)")
    lst.add_argument("--json", action="store_true", help="a JSON array")
    lst.add_argument("--limit", type=int, default=500)
    survey = cases_sub.add_parser(
        "survey", help="call the citizen of a handled case for the satisfaction survey (回访)")
    _add_config(survey)
    survey.add_argument("number", metavar="CASE", help="case number")
    return parser


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not verbose:
        for noisy in ("aiosqlite", "sqlalchemy", "asyncio"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        if args.command == "config":
            cfg = load_config(args.file)
            print(f"{args.file}: OK ({len(cfg.topics)} topics, "
                  f"{len(cfg.routing.groups)} groups, AMI {cfg.ami.host}:{cfg.ami.port})")
            return 0
        cfg = load_config(getattr(args, "config", None))
    except ConfigError as e:
        print(f"hotline: configuration error: {e}", file=sys.stderr)
        return 2
    try:
        if args.command == "serve":
            return asyncio.run(_serve(cfg))
        if args.command == "demo":
            from ivr.demo import DemoOptions, run_demo
            opts = DemoOptions(calls=args.calls, agents=args.agents, speed=args.speed,
                               seed=args.seed, as_json=args.json, serve=args.serve)
            return asyncio.run(run_demo(cfg, opts))
        if args.command == "dialplan":
            from pathlib import Path

            from dialplan.cli import cmd_dialplan
            return cmd_dialplan(cfg, Path(args.out))
        if args.command == "cases" and args.cases_command == "survey":
            return asyncio.run(_cases_survey(cfg, args.number))
        if args.command == "cases":
            return asyncio.run(_cases_list(cfg, args.today, args.json, args.limit))
        if args.command == "speech":
            from speech.cli import cmd_check, cmd_transcribe
            if args.speech_command == "check":
                return cmd_check(cfg)
            return cmd_transcribe(cfg, args.file, args.locale, args.json)
    except KeyboardInterrupt:
        return 130
    except SecretKeyMismatch as e:
        where = getattr(args, "config", None) or "the configuration"
        print(f"hotline: configuration error: {where}: {e}", file=sys.stderr)
        return 2
    return 2


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _serve(cfg: HotlineConfig) -> int:
    from console.app import WebConsole
    from ivr.service import HotlineService
    service = HotlineService(cfg)
    await service.start()
    web = WebConsole(service, cfg.web)
    await web.start()
    try:
        await _wait_for_signal()
    finally:
        log.info("stopping")
        await web.stop()
        await service.stop()
    return 0


async def _cases_list(cfg: HotlineConfig, today: bool, as_json: bool, limit: int) -> int:
    from cases.store import CaseStore
    store = CaseStore(cfg.database.url, secret_key=cfg.database.secret_key,
                      timezone=cfg.service.timezone, calling_hours=cfg.callback_hours())
    await store.open()
    try:
        day: date | None = datetime.now(ZoneInfo(cfg.service.timezone)).date() if today else None
        cases = await store.list_cases(day=day, limit=limit)
    finally:
        await store.close()
    if as_json:
        print(json.dumps([{
            "number": c.number, "status": str(c.status), "topic": c.topic,
            "caller_masked": c.caller_masked, "queue": c.queue, "agent": c.agent,
            "outcome": None if c.outcome is None else str(c.outcome), "wait_s": c.wait_s,
            "talk_s": c.talk_s, "created_at": c.created_at.isoformat(),
        } for c in cases], ensure_ascii=False))
    else:
        for c in cases:
            print(f"{c.number}  {c.status!s:<10} {c.topic or '-':<16} {c.caller_masked:<12} "
                  f"{c.queue or '-':<16} {c.outcome or '-'!s:<10} {c.agent or '-'}")
        print(f"{len(cases)} case(s)")
    return 0


async def _any_link_up(links: list[AmiLink], timeout: float) -> None:
    """Return once one of ``links`` is up; TimeoutError if none is within ``timeout``."""
    waits = [asyncio.create_task(link.wait_up(timeout=timeout)) for link in links]
    try:
        for done in asyncio.as_completed(waits):
            with contextlib.suppress(TimeoutError):
                await done
                return
        raise TimeoutError
    finally:
        for w in waits:
            w.cancel()
        await asyncio.gather(*waits, return_exceptions=True)


async def _cases_survey(cfg: HotlineConfig, number: str) -> int:
    """Place the survey call over AMI; the running service answers it (the answered call
    runs ``ivr.survey.context``/``exten``, which parks it in async AGI) and records the
    score. The call is claimed in the case store like the scheduler's, so the scheduler
    does not ring the citizen again right after."""
    from datetime import timedelta

    from cases.store import CaseStore
    from ivr.ami.link import AmiLink
    from ivr.menus.survey import Placed, SurveyDialer
    store = CaseStore(cfg.database.url, secret_key=cfg.database.secret_key,
                      timezone=cfg.service.timezone, calling_hours=cfg.callback_hours())
    # Every Asterisk of the centre: the call goes out through the first whose AMI is up.
    endpoints = cfg.ami.endpoints(cfg.service.node)
    links = [AmiLink(ami, name=f"ami-survey-{node}") for node, ami in endpoints]
    await store.open()
    for link in links:
        link.start()
    try:
        case = await store.get(number)
        if case is None or str(case.status) != "replied":
            state = "no such case" if case is None else f"the case is {case.status}"
            print(f"hotline: no survey call for case {number}: {state} (only a replied case "
                  "is surveyed)", file=sys.stderr)
            return 1
        await _any_link_up(links, cfg.ami.action_timeout_s)
        claim = await store.claim_survey_call(number, actor="cli", attempts=1_000_000,
                                              retry_after=timedelta(0))
        if claim.attempt is None:
            print(f"hotline: case {number} cannot be surveyed now", file=sys.stderr)
            return 1
        dialer = SurveyDialer(links, store, cfg.ivr.survey, cfg.ivr.menu_for)
        ready = await dialer.prepare(number)
        if isinstance(ready, Placed):
            await store.release_survey_call(number, claim.attempt, actor="cli", why=ready.value)
            placed = ready
        else:
            placed = await dialer.place(ready)
            if not placed:
                await store.release_survey_call(number, claim.attempt, actor="cli",
                                                why=placed.value)
    except TimeoutError:
        where = ", ".join(f"{ami.host}:{ami.port}" for _, ami in endpoints)
        print(f"hotline: AMI not reachable on any Asterisk ({where})", file=sys.stderr)
        return 1
    finally:
        for link in links:
            await link.stop()
        await store.close()
    if not placed:
        print(f"hotline: survey call for case {number} not placed: {placed.value}",
              file=sys.stderr)
        return 1
    print(f"survey call for case {number}: {placed.value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
