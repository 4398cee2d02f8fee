"""``/metrics`` in Prometheus text format, from the app's own ``CollectorRegistry``.

Most figures are read at scrape time from the objects that already hold them (live queue
state, AMI link, case recorder, websocket hub), so nothing is counted twice; waits are a
histogram fed by the board's counters as calls are answered or abandoned. No global registry:
two apps in one process (tests) never see each other's series.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from console.context import Console

WAIT_BUCKETS = (5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
METRICS_REGISTRY: web.AppKey[CollectorRegistry] = web.AppKey("metrics_registry",
                                                             CollectorRegistry)


class _Live(Collector):
    def __init__(self, console: Console) -> None:
        self._c = console

    def collect(self) -> Iterator[Metric]:
        c = self._c
        svc = c.service
        link = svc.link
        up = GaugeMetricFamily("hotline_ami_up", "1 while the AMI link is logged in")
        up.add_metric([], 1.0 if link.is_up else 0.0)
        yield up
        state = GaugeMetricFamily("hotline_ami_link_state", "AMI link state (1 = current)",
                                  labels=["state"])
        for s in ("down", "connecting", "up", "auth_failed", "stopped"):
            state.add_metric([s], 1.0 if link.state.value == s else 0.0)
        yield state
        connects = CounterMetricFamily("hotline_ami_connects", "Successful AMI logins")
        connects.add_metric([], float(link.connects))
        yield connects
        skipped = CounterMetricFamily("hotline_ami_malformed_skipped",
                                      "Malformed AMI messages skipped, all nodes (logged a few a minute)")
        skipped.add_metric([], float(sum(n.link.skipped for n in svc.nodes)))
        yield skipped

        calls = GaugeMetricFamily("hotline_calls_in_progress", "Calls with a live session")
        calls.add_metric([], float(len(svc.calls.sessions)))
        yield calls
        started = CounterMetricFamily("hotline_calls_started", "Call sessions started",
                                      labels=["kind"])
        started.add_metric(["new"], float(svc.calls.started))
        started.add_metric(["resumed"], float(svc.calls.resumed))
        yield started

        offered = CounterMetricFamily("hotline_queue_calls_offered",
                                      "Callers that joined the queue", labels=["queue"])
        answered = CounterMetricFamily("hotline_queue_calls_answered",
                                       "Callers connected to an agent", labels=["queue"])
        abandoned = CounterMetricFamily("hotline_queue_calls_abandoned",
                                        "Callers that hung up while waiting", labels=["queue"])
        timed_out = CounterMetricFamily(
            "hotline_queue_calls_timed_out",
            "Callers whose Queue() timeout expired (then offered another queue)",
            labels=["queue"])
        waiting = GaugeMetricFamily("hotline_queue_waiting", "Callers waiting now",
                                    labels=["queue"])
        longest = GaugeMetricFamily("hotline_queue_longest_wait_seconds",
                                    "Wait of the longest-waiting caller", labels=["queue"])
        members = GaugeMetricFamily("hotline_queue_members", "Queue members by state",
                                    labels=["queue", "state"])
        live = svc.live
        now = live.clock()
        for g in svc.config.routing.groups:
            q = g.queue
            t = c.stats.totals.get(q)
            offered.add_metric([q], float(t.offered if t else 0))
            answered.add_metric([q], float(t.answered if t else 0))
            abandoned.add_metric([q], float(t.abandoned if t else 0))
            w = live.waiting.get(q, {})
            waiting.add_metric([q], float(len(w)))
            longest.add_metric([q], max((now - x.entered for x in w.values()), default=0.0))
            timed_out.add_metric([q], float(t.timed_out if t else 0))
            member_states = [m.state(now) for m in live.members.get(q, {}).values()]
            for kind in ("available", "on_call", "wrap_up", "paused", "unavailable"):
                members.add_metric([q, kind], float(member_states.count(kind)))
        yield from (offered, answered, abandoned, timed_out, waiting, longest, members)

        errors = CounterMetricFamily("hotline_case_store_write_errors",
                                     "Case writes that failed at least once (retried)")
        errors.add_metric([], float(svc.recorder.errors))
        yield errors
        lost = CounterMetricFamily("hotline_case_store_writes_lost",
                                   "Case writes given up on")
        lost.add_metric([], float(svc.recorder.lost))
        yield lost
        read_errors = CounterMetricFamily("hotline_console_case_store_errors",
                                          "Case store reads of the console that failed")
        read_errors.add_metric([], float(c.pops.store_errors))
        yield read_errors

        speech = GaugeMetricFamily("hotline_speech_enabled",
                                   "1 when speech recognition is running")
        speech.add_metric([], 1.0 if svc.audiosocket is not None else 0.0)
        yield speech

        clients = GaugeMetricFamily("hotline_console_ws_clients", "Open console websockets")
        clients.add_metric([], float(c.hub.clients))
        yield clients
        sent = CounterMetricFamily("hotline_console_ws_messages",
                                   "Messages written to console websockets")
        sent.add_metric([], float(c.hub.stats.delivered))
        yield sent
        slow = CounterMetricFamily("hotline_console_ws_slow_clients",
                                   "Websockets disconnected for falling behind")
        slow.add_metric([], float(c.hub.stats.overflowed))
        yield slow
        pops = CounterMetricFamily("hotline_console_screen_pops",
                                   "Screen-pop messages queued to operators")
        pops.add_metric([], float(c.pops.pops_sent))
        yield pops


def setup_metrics(app: web.Application, console: Console) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Live(console))
    waits = Histogram("hotline_queue_wait_seconds", "Queue waits that ended, by outcome",
                      ["queue", "outcome"], buckets=WAIT_BUCKETS, registry=registry)
    console.stats.on_wait.append(
        lambda q, w, answered: waits.labels(q, "answered" if answered else "abandoned")
        .observe(w))
    app[METRICS_REGISTRY] = registry
    app.router.add_get("/metrics", metrics)
    return registry


async def metrics(request: web.Request) -> web.Response:
    # No caller data in here, so no login: a scraper has no session. Restrict by network.
    body = generate_latest(request.app[METRICS_REGISTRY])
    resp = web.Response(body=body)
    resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    resp.charset = "utf-8"
    return resp
