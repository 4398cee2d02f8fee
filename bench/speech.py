"""Speech benchmark: bare Vosk against the service's AudioSocket path, per decoding mode.

    python -m bench.speech [--json] [--speed 1.0] [--concurrency 4] [--quick]

Corpus: Korean phrases synthesized by espeak-ng at run time (a topic word or a short phrase
per topic, as a directed prompt would get them), each with its reference text and topic.

- bare: as many threads as the engine has feed each utterance to fresh recognizers in 200 ms
  chunks, exactly the recognizers the service runs for that mode (spotting: the keyword
  grammar; transcription modes: the grammar and a free recognizer), up to the spotter's
  endpoint as the service does (trailing silence is cheap to decode; decoding all of it
  would flatter bare Vosk). ``bare_streams_per_core`` = audio seconds / process CPU
  seconds: how many real-time callers one core could decode.
  (Parallel on purpose: on a shared 2-vCPU machine two decoders each run slower than one, so
  a single-thread figure would make the service look worse than it is.)
- service: an AudioSocket server in this process, simulated Asterisk callers in a child
  process; callers stream at ``--speed`` x real time, ``--concurrency`` at a time, and
  ``capture_utterance`` runs as the IVR would (spotting + the mode's transcription, VAD,
  silence sent back every 20 ms). ``service_streams_per_core`` = audio seconds received /
  CPU seconds of this process (event loop and pool threads). ``ratio`` = service / bare.
- ``final_latency_p95_ms``: from the last frame of speech sent to ``capture_utterance``
  returning (includes Vosk's endpoint silence, about 0.5-1 s, and the transcript flush).
- ``topic_accuracy``: service path. ``wer`` (words) and ``cer`` (characters, spaces ignored;
  word spacing in Korean is loose) for transcription modes, service path.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import contextlib
import json
import logging
import random
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ivr.config import load_config
from routing.topics import TopicCatalogue
from speech.audiosocket_server import AudioSocketServer
from speech.caller import SimulatedCaller
from speech.capture import Utterance, capture_utterance
from speech.decoder import BYTES_PER_S, Mode
from speech.engine import SpeechEngine
from speech.synth import synthesize

MODES: tuple[Mode, ...] = ("spotting", "transcription", "transcription_fast")
LOCALE = "ko-KR"
# The ko-KR keywords recommended for the defaults (see RESULTS_speech.md); used unless
# --config-keywords asks for the configured ones.
KO_KEYWORDS = {
    "water": ["수도", "하수도", "정수기"],
    "energy": ["난방비", "가스", "보일러"],
    "housing": ["임대", "월세", "관리비"],
    "transport": ["버스", "마을버스"],
    "social_security": ["보험", "고용", "연금", "일자리"],
}
CORPUS: list[tuple[str, str]] = [
    ("하수도", "water"), ("정수기요", "water"), ("수도 문의", "water"),
    ("난방비요", "energy"), ("보일러", "energy"), ("가스", "energy"),
    ("관리비요", "housing"), ("임대", "housing"), ("월세", "housing"),
    ("마을버스 문의", "transport"), ("버스", "transport"), ("마을버스요", "transport"),
    ("보험 문의", "social_security"), ("고용", "social_security"), ("일자리", "social_security"),
]
LEAD_S, TRAIL_S = 0.3, 2.5
CHUNK = BYTES_PER_S // 5


@dataclass(frozen=True, slots=True)
class Sample:
    text: str
    topic: str
    speech: bytes          # the synthesized phrase alone
    audio: bytes           # with line noise before and after


def _noise(seconds: float, rnd: random.Random) -> bytes:
    n = int(8000 * seconds)
    return array.array("h", (int(rnd.gauss(0, 20)) for _ in range(n))).tobytes()


def build_corpus(quick: bool) -> list[Sample]:
    rnd = random.Random(1)
    items = CORPUS[::3] if quick else CORPUS
    out = []
    for text, topic in items:
        speech = synthesize(text, LOCALE)
        out.append(Sample(text, topic, speech, _noise(LEAD_S, rnd) + speech + _noise(TRAIL_S, rnd)))
    return out


def edit_distance(a: list[str], b: list[str]) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def error_rates(pairs: list[tuple[str, str]]) -> tuple[float, float]:
    """(WER, CER) over (reference, hypothesis) pairs."""
    w_err = sum(edit_distance(r.split(), h.split()) for r, h in pairs)
    w_ref = sum(len(r.split()) for r, _ in pairs)
    c_err = sum(edit_distance(list(r.replace(" ", "")), list(h.replace(" ", ""))) for r, h in pairs)
    c_ref = sum(len(r.replace(" ", "")) for r, _ in pairs)
    return round(w_err / max(w_ref, 1), 3), round(c_err / max(c_ref, 1), 3)


def _bare_one(engine: SpeechEngine, modes: list[Mode], keywords: list[str], s: Sample) -> float:
    """Decode one utterance like the service does, minus the service: every recognizer gets
    the same chunks until the spotter's endpoint, then the final results. Audio seconds."""
    recs = [engine.recognizer_sync(m, keywords) for m in modes]   # recs[0]: the spotter
    fed = 0
    for i in range(0, len(s.audio), CHUNK):
        chunk = s.audio[i : i + CHUNK]
        fed += len(chunk)
        endpoint = recs[0].AcceptWaveform(chunk)
        for r in recs[1:]:
            r.AcceptWaveform(chunk)
        if endpoint and json.loads(recs[0].Result()).get("text"):
            break
    for r in recs:
        r.FinalResult()
    return fed / BYTES_PER_S


def bare(engine: SpeechEngine, mode: Mode, keywords: list[str], corpus: list[Sample],
         threads: int) -> float:
    """Streams per core of bare Vosk for ``mode``: ``threads`` utterances decoded at once
    (the parallelism the service gets), process CPU time."""
    modes: list[Mode] = ["spotting"]
    if mode != "spotting":
        modes.append(mode)
    for m in modes:                                   # load models outside the measurement
        engine.recognizer_sync(m, keywords)
    cpu0 = time.process_time()
    with ThreadPoolExecutor(threads) as pool:
        audio_s = sum(pool.map(lambda s: _bare_one(engine, modes, keywords, s), corpus))
    return audio_s / (time.process_time() - cpu0)


async def _caller_child() -> None:
    """Child process: the simulated Asterisk side, so its CPU is not counted as the service's.

    Reads {port, speed, concurrency, calls: [{uuid, audio, head}]} on stdin; prints one JSON
    line per call with the monotonic time (system-wide clock) its speech ended.
    """
    job = json.loads(sys.stdin.read())
    sem = asyncio.Semaphore(job["concurrency"])

    async def call(c: dict[str, Any]) -> None:
        async with sem:
            audio = base64.b64decode(c["audio"])
            caller = SimulatedCaller("127.0.0.1", job["port"], uuid.UUID(c["uuid"]))
            await caller.connect()
            await caller.send_audio(audio[: c["head"]], job["speed"])
            end = time.monotonic()
            print(json.dumps({"uuid": c["uuid"], "speech_end": end}), flush=True)
            with contextlib.suppress(ConnectionError):
                await caller.send_audio(audio[c["head"]:], job["speed"])
            await caller.wait_hangup(30.0)
            await caller.close()

    await asyncio.gather(*(call(c) for c in job["calls"]))


async def service(engine: SpeechEngine, catalogue: TopicCatalogue, mode: Mode,
                  corpus: list[Sample], speed: float, concurrency: int) -> dict[str, Any]:
    server = AudioSocketServer("127.0.0.1", 0)
    await server.start()
    await engine.load(fast=mode == "transcription_fast")
    calls = [(uuid.uuid4(), s) for s in corpus]
    job = {"port": server.port, "speed": speed, "concurrency": concurrency,
           "calls": [{"uuid": str(u), "audio": base64.b64encode(s.audio).decode(),
                      "head": len(s.audio) - int(TRAIL_S * 8000) * 2} for u, s in calls]}

    async def capture(u: uuid.UUID, s: Sample) -> tuple[Sample, Utterance, float]:
        stream = server.expect(u)
        try:
            await stream.wait_connected(600.0)
            utt = await capture_utterance(stream, engine, catalogue, LOCALE, 10.0,
                                          transcription=None if mode == "spotting" else mode)
            return s, utt, time.monotonic()
        finally:
            await stream.close()

    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.speech", "--caller-child",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    cpu0 = time.process_time()
    try:
        tasks = [asyncio.create_task(capture(u, s)) for u, s in calls]
        out, _ = await child.communicate(json.dumps(job).encode())
        results = await asyncio.gather(*tasks)
    finally:
        if child.returncode is None:
            child.kill()
        await server.stop()
    cpu = time.process_time() - cpu0
    ends = {(d := json.loads(line))["uuid"]: d["speech_end"] for line in out.decode().splitlines()}
    lat = sorted(done - ends[str(u)] for (u, _), (_, _, done) in zip(calls, results, strict=True))
    audio_s = sum(u.audio_s for _, u, _ in results)
    p95 = lat[min(len(lat) - 1, round(0.95 * (len(lat) - 1)))]
    res: dict[str, Any] = {
        "service_streams_per_core": round(audio_s / cpu, 2),
        "final_latency_p95_ms": round(p95 * 1000),
        "final_latency_median_ms": round(statistics.median(lat) * 1000),
        "topic_accuracy": round(sum(u.topic == s.topic for s, u, _ in results) / len(results), 3),
        "dropped_s": round(sum(u.dropped_s for _, u, _ in results), 2),
    }
    if mode != "spotting":
        res["wer"], res["cer"] = error_rates([(s.text, u.text) for s, u, _ in results])
    res["errors"] = [f"{s.text} -> {u.topic} ({','.join(u.keywords)}; text {u.text!r})"
                     for s, u, _ in results if u.topic != s.topic]
    return res


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    cfg = load_config(args.config)
    topics = cfg.topics
    if not args.config_keywords:
        topics = [t.model_copy(update={"keywords": {**t.keywords,
                                                    LOCALE: KO_KEYWORDS.get(t.name, [])}})
                  for t in topics]
    catalogue = TopicCatalogue.from_config(topics)
    keywords = catalogue.keywords(LOCALE)
    engine = SpeechEngine(cfg.speech.model_path or None)
    corpus = build_corpus(args.quick)
    result: dict[str, Any] = {
        "model": engine.model_path, "threads": engine.threads,
        "corpus": {"utterances": len(corpus),
                   "audio_s": round(sum(len(s.audio) for s in corpus) / BYTES_PER_S, 1),
                   "speech": "espeak-ng ko, synthesized at run time"},
        "service_speed": args.speed, "service_concurrency": args.concurrency,
        "modes": {},
    }
    try:
        for mode in MODES:
            b = await asyncio.to_thread(bare, engine, mode, keywords, corpus, engine.threads)
            s = await service(engine, catalogue, mode, corpus, args.speed, args.concurrency)
            result["modes"][mode] = {"bare_streams_per_core": round(b, 2), **s,
                                     "ratio": round(s["service_streams_per_core"] / b, 3)}
            print(f"{mode}: {result['modes'][mode]}", file=sys.stderr)
    finally:
        engine.close()
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.speech", description=__doc__.split("\n")[0])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--speed", type=float, default=1.0, help="caller pace, x real time")
    p.add_argument("--concurrency", type=int, default=4, help="simultaneous calls")
    p.add_argument("--quick", action="store_true", help="a third of the corpus")
    p.add_argument("--config", help="hotline TOML configuration (model path, topics)")
    p.add_argument("--config-keywords", action="store_true",
                   help="use the configured ko-KR keywords instead of the recommended ones")
    p.add_argument("--caller-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.caller_child:
        asyncio.run(_caller_child())
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
