"""Speech benchmark: bare Vosk against the service's AudioSocket path, per decoding mode.

    python -m bench.speech [--json] [--speed 1.0] [--rounds 2] [--quick]

Corpus, synthesized at run time: per topic three short answers (a keyword or a short phrase,
as a directed prompt gets them) spoken by espeak-ng at several speeds (130, 170, 210 words per
minute), each clean (quiet line hiss) and with white noise added by sox (about 15 dB below the
voice); for the transcription modes, also eight longer sentences, clean and noisy, for the
word error rate.

- bare: as many threads as the engine has decode the utterances with fresh recognizers in
  100 ms chunks (the service's batch), exactly the recognizers the service runs for that mode
  (spotting: the greeting's grammar, keywords and person words; transcription modes: that
  grammar and a free recognizer), each utterance up to where the service's capture of it
  ended in the neighbouring service run (same audio: line noise after the phrase costs Vosk
  far more per second than the phrase, so decoding more or less of it than the service
  would skew the ratio).
  ``bare_streams_per_core`` = audio seconds / process CPU seconds: how many real-time
  callers one core could decode.
- service: an AudioSocket server in this process, simulated Asterisk callers in a child
  process (its CPU is not counted); callers stream 20 ms frames at ``--speed`` x real time,
  ``concurrency`` at a time (spotting: 20 per core of the engine; transcription modes: 1 per
  core, ``--concurrency`` overrides both; the first ``concurrency`` calls start spread over
  one call's length, later ones as soon as a call ends), and ``capture_utterance`` runs as the IVR runs it
  (spotting + the mode's transcription, VAD, silence sent back). ``service_streams_per_core``
  = audio seconds received / CPU seconds of this process (event loop and pool threads).
  ``ratio`` = service / bare (1.0: the service adds nothing to Vosk).
  ``service_cpu_split``: the shares of that CPU on the event loop's thread, on the engine's
  decoding threads, and elsewhere; ``decoder_cpu_over_bare``: the decoding threads' CPU over
  bare Vosk's for the same audio (above 1.0: the same Vosk work costs more in the service,
  where many calls' recognizers take turns on each core, than decoded one utterance at a time).
- Bare and service alternate within each mode (``--rounds`` of service+bare over the whole
  corpus, the order swapped every round: S B B S), so both see the same load on a shared machine; CPU
  and audio are summed over the rounds.
- ``final_latency_p95_ms``: from the moment the caller sent the frame with the last voiced
  sample of the phrase (espeak-ng's own trailing silence, about 0.38 s, is not speech) to
  ``capture_utterance`` returning with the topic (and the transcript in transcription modes).
- ``topic_accuracy``: service path, all utterances; ``topic_accuracy_by_condition`` per
  speed and noise. The misses split into ``topic_wrong_rate`` (another topic: the caller is
  queued for the wrong department) and ``topic_none_rate`` (no topic: a person asks). ``wer`` (words) and ``cer`` (characters, spaces ignored; word spacing in
  Korean is loose) for transcription modes, service path, against the synthesized text.
- The engine is created with a 60 s decode backlog and the capture waits up to 60 s for the
  transcript, so an overloaded run shows as latency rather than as dropped audio (which would
  flatter the CPU figures); ``dropped_s`` reports any drop anyway.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bench.speech_corpus import KO_KEYWORDS, LOCALE, SENTENCES, Sample, build_corpus, error_rates
from ivr.config import load_config
from routing.topics import TopicCatalogue
from speech.audiosocket_server import AudioSocketServer
from speech.caller import SimulatedCaller
from speech.capture import Utterance, capture_utterance
from speech.decoder import BYTES_PER_S, Decoder, Mode
from speech.engine import SpeechEngine
from speech.spotting import Expect

MODES: tuple[Mode, ...] = ("spotting", "transcription", "transcription_fast")
CHUNK = int(Decoder.MIN_BATCH_S * BYTES_PER_S)


def _bare_one(engine: SpeechEngine, modes: list[Mode], keywords: list[str], audio: bytes,
              ) -> float:
    """Decode ``audio`` like the service does, minus the service: every recognizer gets the
    same 100 ms chunks, then the final results. Audio seconds."""
    recs = [engine.recognizer_sync(m, keywords) for m in modes]   # recs[0]: the spotter
    for i in range(0, len(audio), CHUNK):
        chunk = audio[i : i + CHUNK]
        for r in recs:
            if r.AcceptWaveform(chunk):
                r.Result()
    for r in recs:
        r.FinalResult()
    return len(audio) / BYTES_PER_S


def bare(engine: SpeechEngine, mode: Mode, keywords: list[str], audio: list[bytes],
         threads: int) -> tuple[float, float]:
    """Bare Vosk for ``mode``: ``threads`` utterances decoded at once (the parallelism the
    service gets). (audio seconds, process CPU seconds)."""
    modes: list[Mode] = ["spotting"]
    if mode != "spotting":
        modes.append(mode)
    for m in modes:                                   # load models outside the measurement
        engine.recognizer_sync(m, keywords)
    cpu0 = time.process_time()
    with ThreadPoolExecutor(threads) as pool:
        audio_s = sum(pool.map(lambda a: _bare_one(engine, modes, keywords, a), audio))
    return audio_s, time.process_time() - cpu0


async def _caller_child(job: dict[str, Any]) -> None:
    """Child process: the simulated Asterisk side, so its CPU is not counted as the service's.

    ``job``: {port, speed, concurrency, calls: [{uuid, audio, head}]} (read from the file the
    parent names); prints one JSON line per call with the monotonic time (system-wide clock)
    its speech ended.
    """
    sem = asyncio.Semaphore(job["concurrency"])
    loop = asyncio.get_running_loop()
    t0 = loop.time()

    async def call(i: int, c: dict[str, Any]) -> None:
        # The first wave arrives spread over one call's length, not all in the same 20 ms:
        # a steady state of N calls in progress, like a busy hotline, not N callers who all
        # stop talking at the same instant.
        await asyncio.sleep(max(0.0, t0 + i * job["stagger_s"] - loop.time()))
        async with sem:
            audio = base64.b64decode(c["audio"])
            head = (c["head"] + 319) // 320 * 320        # through the frame with the end
            caller = SimulatedCaller("127.0.0.1", job["port"], uuid.UUID(c["uuid"]))
            await caller.connect()
            await caller.send_audio(audio[:head], job["speed"])
            end = time.monotonic()
            print(json.dumps({"uuid": c["uuid"], "speech_end": end}), flush=True)
            with contextlib.suppress(ConnectionError):
                await caller.send_audio(audio[head:], job["speed"])
            await caller.wait_hangup(60.0)
            await caller.close()

    await asyncio.gather(*(call(i, c) for i, c in enumerate(job["calls"][: job["concurrency"]])),
                         *(call(0, c) for c in job["calls"][job["concurrency"]:]))


@dataclass(slots=True)
class _Run:
    audio_s: float
    cpu_s: float
    loop_cpu_s: float           # the event loop's thread (AudioSocket, VAD, capture)
    decoder_cpu_s: float        # the engine's decoding threads (Vosk, and the jobs around it)
    results: list[tuple[Sample, Utterance, float]]    # sample, utterance, latency (s)


async def service(engine: SpeechEngine, catalogue: TopicCatalogue, mode: Mode,
                  corpus: list[Sample], speed: float, concurrency: int,
                  expect: Expect) -> _Run:
    server = AudioSocketServer("127.0.0.1", 0)
    await server.start()
    await engine.load(fast=mode == "transcription_fast")
    calls = [(uuid.uuid4(), s) for s in corpus]
    mean_s = sum(len(s.audio) for s in corpus) / len(corpus) / BYTES_PER_S / speed
    job = {"port": server.port, "speed": speed, "concurrency": concurrency,
           "stagger_s": mean_s / concurrency,
           "calls": [{"uuid": str(u), "audio": base64.b64encode(s.audio).decode(),
                      "head": s.speech_end} for u, s in calls]}

    async def capture(u: uuid.UUID, s: Sample) -> tuple[Sample, Utterance, float]:
        stream = server.expect(u)
        try:
            await stream.wait_connected(600.0)
            utt = await capture_utterance(stream, engine, catalogue, LOCALE, 10.0,
                                          transcription=None if mode == "spotting" else mode,
                                          transcript_wait_s=60.0, expect=expect)
            return s, utt, time.monotonic()
        finally:
            await stream.close()

    # The job (all calls' audio, megabytes) goes through a file written before the CPU count
    # starts: encoding and piping it is the harness's work, not the service's.
    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8") as jf:
        json.dump(job, jf)
        jf.flush()
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.speech", "--caller-child", jf.name,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE)
        cpu0, loop0, dec0 = time.process_time(), time.thread_time(), engine.decoder_cpu_s()
        try:
            tasks = [asyncio.create_task(capture(u, s)) for u, s in calls]
            out, _ = await child.communicate()
            results = await asyncio.gather(*tasks)
        finally:
            if child.returncode is None:
                child.kill()
            await server.stop()
    cpu = time.process_time() - cpu0
    loop_cpu, dec_cpu = time.thread_time() - loop0, engine.decoder_cpu_s() - dec0
    ends = {(d := json.loads(line))["uuid"]: d["speech_end"] for line in out.decode().splitlines()}
    return _Run(audio_s=sum(u.audio_s for _, u, _ in results), cpu_s=cpu,
                loop_cpu_s=loop_cpu, decoder_cpu_s=dec_cpu,
                results=[(s, utt, done - ends[str(u)])
                         for (u, _), (s, utt, done) in zip(calls, results, strict=True)])


def _p(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, round(q * (len(v) - 1)))]


async def measure_mode(engine: SpeechEngine, catalogue: TopicCatalogue, mode: Mode,
                       corpus: list[Sample], speed: float, concurrency: int,
                       rounds: int, expect: Expect) -> dict[str, Any]:
    # The grammar the greeting's spotter runs (topic keywords and the menu's person words),
    # for the bare recognizers as for the service path.
    keywords = expect.grammar_words(catalogue, LOCALE)
    bare_audio = bare_cpu = 0.0
    runs: list[_Run] = []
    for r in range(rounds):
        async def do_bare() -> None:
            # Exactly the audio the service decoded for each call in its last run (up to
            # where the capture ended), so both decode the same speech and the same silence.
            nonlocal bare_audio, bare_cpu
            audio = [s.audio[: int(u.audio_s * BYTES_PER_S) // 2 * 2]
                     for s, u, _ in runs[-1].results]
            a, c = await asyncio.to_thread(bare, engine, mode, keywords, audio, engine.threads)
            bare_audio += a
            bare_cpu += c

        async def do_service() -> None:
            runs.append(await service(engine, catalogue, mode, corpus, speed, concurrency,
                                      expect))

        # service, bare, bare, service, ...: each bare run next to the service run it mirrors
        for step in ((do_service, do_bare) if r % 2 == 0 else (do_bare, do_service)):
            await step()
    results = [x for run in runs for x in run.results]
    b = bare_audio / bare_cpu
    sv = sum(run.audio_s for run in runs) / sum(run.cpu_s for run in runs)
    lat = [lat for _, _, lat in results]
    sv_cpu = sum(run.cpu_s for run in runs)
    loop_cpu = sum(run.loop_cpu_s for run in runs)
    dec_cpu = sum(run.decoder_cpu_s for run in runs)
    by_cond: dict[str, list[bool]] = {}
    for s, u, _ in results:
        by_cond.setdefault(s.condition, []).append(u.topic == s.topic)
    res: dict[str, Any] = {
        "bare_streams_per_core": round(b, 2),
        "service_streams_per_core": round(sv, 2),
        "ratio": round(sv / b, 3),
        "final_latency_p95_ms": round(_p(lat, 0.95) * 1000),
        # Where the service's CPU went, and its decoding threads against bare Vosk's CPU for
        # the same audio (1.0: Vosk costs the service what it costs alone).
        "service_cpu_split": {"event_loop": round(loop_cpu / sv_cpu, 3),
                              "decoder_threads": round(dec_cpu / sv_cpu, 3),
                              "other": round(max(0.0, sv_cpu - loop_cpu - dec_cpu) / sv_cpu, 3)},
        "decoder_cpu_over_bare": round(dec_cpu / bare_cpu, 3),
        "final_latency_median_ms": round(statistics.median(lat) * 1000),
        "topic_accuracy": round(sum(u.topic == s.topic for s, u, _ in results) / len(results), 3),
        "topic_accuracy_by_condition": {k: round(sum(v) / len(v), 3)
                                        for k, v in sorted(by_cond.items())},
        # The misses split: sent to the wrong department, or (no topic) to a person.
        "topic_wrong_rate": round(sum(u.topic not in (None, s.topic) for s, u, _ in results)
                                  / len(results), 3),
        "topic_none_rate": round(sum(u.topic is None for _, u, _ in results) / len(results),
                                 3),
        "concurrency": concurrency, "calls": len(results),
        "ended_by": dict(sorted(statistics_counter(u.ended_by for _, u, _ in results).items())),
        "dropped_s": round(sum(u.dropped_s for _, u, _ in results), 2),
    }
    if mode != "spotting":
        res["wer"], res["cer"] = error_rates([(s.text, u.text) for s, u, _ in results])
        long = [(s.text, u.text) for s, u, _ in results if (s.text, s.topic) in SENTENCES]
        res["wer_sentences"], res["cer_sentences"] = error_rates(long)
    res["errors"] = sorted({f"{s.text} [{s.condition}] -> {u.topic} ({','.join(u.keywords)})"
                            for s, u, _ in results if u.topic != s.topic})
    return res


def statistics_counter(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in items:
        out[i] = out.get(i, 0) + 1
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    cfg = load_config(args.config)
    topics = cfg.topics
    if not args.config_keywords:
        topics = [t.model_copy(update={"keywords": {**t.keywords,
                                                    LOCALE: KO_KEYWORDS.get(t.name, [])}})
                  for t in topics]
    catalogue = TopicCatalogue.from_config(topics)
    # The greeting of the corpus's language: every topic, and that menu's person words.
    menu = next((m for m in cfg.ivr.menus.values() if m.language == LOCALE), None)
    expect = Expect(person_words=tuple(menu.human_words) if menu is not None else ())
    engine = SpeechEngine(cfg.speech.model_path or None, max_pending_s=60.0)
    modes = [m for m in MODES if m in args.modes.split(",")]
    result: dict[str, Any] = {
        "model": engine.model_path, "threads": engine.threads,
        "fast_settings": engine.fast_settings.conf_lines(),
        "speech": "espeak-ng ko, synthesized at run time; noise by sox",
        "service_speed": args.speed, "rounds": args.rounds,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "modes": {},
    }
    try:
        for mode in modes:
            corpus = build_corpus(mode, args.quick)
            conc = args.concurrency or (20 * engine.threads if mode == "spotting"
                                        else engine.threads)
            r = await measure_mode(engine, catalogue, mode, corpus, args.speed, conc,
                                   args.rounds, expect)
            r["corpus"] = {"utterances": len(corpus),
                           "audio_s": round(sum(len(s.audio) for s in corpus) / BYTES_PER_S, 1)}
            result["modes"][mode] = r
            print(f"{mode}: {json.dumps(r, ensure_ascii=False)}", file=sys.stderr)
        if {"transcription", "transcription_fast"} <= set(result["modes"]):
            full, fast = result["modes"]["transcription"], result["modes"]["transcription_fast"]
            result["fast_vs_default"] = {
                "bare_speedup": round(fast["bare_streams_per_core"]
                                      / full["bare_streams_per_core"], 2),
                "service_speedup": round(fast["service_streams_per_core"]
                                         / full["service_streams_per_core"], 2),
                "wer_points": round(100 * (fast["wer"] - full["wer"]), 1),
            }
        result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        engine.close()
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.speech", description=__doc__.split("\n")[0])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--speed", type=float, default=1.0, help="caller pace, x real time")
    p.add_argument("--concurrency", type=int, default=0,
                   help="simultaneous calls (default: 20 per core spotting, 1 per core else)")
    p.add_argument("--rounds", type=int, default=2, help="bare+service rounds per mode")
    p.add_argument("--modes", default=",".join(MODES), help="comma-separated subset")
    p.add_argument("--quick", action="store_true", help="a smaller corpus")
    p.add_argument("--config", help="hotline TOML configuration (model path, topics)")
    p.add_argument("--config-keywords", action="store_true",
                   help="use the configured ko-KR keywords instead of the recommended ones")
    p.add_argument("--caller-child", metavar="JOB", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.caller_child:
        with open(args.caller_child, encoding="utf-8") as f:
            asyncio.run(_caller_child(json.load(f)))
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    result = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        for mode, r in result["modes"].items():
            print(f"{mode:20s} bare {r['bare_streams_per_core']:7.2f}/core  service "
                  f"{r['service_streams_per_core']:7.2f}/core  ratio {r['ratio']:.2f}  p95 "
                  f"{r['final_latency_p95_ms']} ms  topic {r['topic_accuracy']:.2f}"
                  + (f"  WER {r['wer']:.2f} CER {r['cer']:.2f}" if "wer" in r else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
