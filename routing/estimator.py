"""Expected-wait estimation per queue: decayed statistics plus an Erlang-A position formula.

Two parts, both free of I/O:

- ``DecayedStats`` learns, with exponential forgetting (a half-life in seconds, so a morning's
  calls do not dominate the afternoon), the mean handle time per (queue, proficiency penalty),
  the arrival rate per queue and the abandonment hazard (abandons per second of waiting, the
  maximum-likelihood estimate for exponential patience). ``view()`` freezes them into a
  ``StatsView`` that goes into a routing snapshot.
- ``expected_wait`` turns a caller's position and the servers able to take it into the
  expected wait *of a caller who is answered* — the wait ASA measures and the only one that
  can be checked afterwards (an abandoned caller's wait to answer is never seen). For ``k``
  callers ahead, busy servers draining the queue at a total rate ``R`` (sum of 1/handle time
  over the eligible members) and abandonment hazard ``theta``: while ``j`` callers are still
  ahead the caller moves up at rate ``R + j * theta``, a stage of an exponential length; being
  answered means the caller's own patience outlasted every stage, which (for exponential
  patience) tilts each stage's rate up by ``theta``:
      E[W | answered] = sum_{j=0..k} 1 / (R + (j + 1) * theta).
  Exact for M/M/n+M with all servers busy (the Erlang-A model); without abandonment it is
  (k + 1) * AHT / n. Idle eligible servers absorb callers ahead first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


def expected_wait(ahead: float, idle: int, rate: float, theta: float) -> float:
    """Expected wait, until answered, of a caller with ``ahead`` callers before it.

    ``idle``: eligible servers idle now; ``rate``: total service rate (calls/s) of the
    eligible servers when all are busy; ``theta``: abandonment hazard (1/mean patience).
    A fractional ``ahead`` (a projected queue) interpolates between its neighbours.
    """
    k = ahead - idle
    if k < 0.0:
        return 0.0
    if rate <= 0.0:
        return math.inf
    whole = int(k)
    frac = k - whole
    if theta <= 0.0:
        return (k + 1.0) / rate
    w = sum(1.0 / (rate + (j + 1) * theta) for j in range(whole + 1))
    return w + frac / (rate + (whole + 2) * theta)


@dataclass(frozen=True, slots=True)
class StatsView:
    """Frozen estimates handed to the policy inside a snapshot."""

    aht_s: dict[tuple[str, int], float]        # (queue, proficiency penalty) -> mean handle
    arrivals_per_s: dict[str, float]
    theta: float                                 # abandonment hazard, 1/s (0 = nobody leaves)
    default_aht_s: float

    def aht(self, queue: str, skill: int) -> float:
        """Handle time for a proficiency level; an unseen level borrows the queue's primary
        figure, then the global default (new skills are learnt as calls complete)."""
        v = self.aht_s.get((queue, skill))
        if v is None:
            v = self.aht_s.get((queue, 0), self.default_aht_s)
        return v

    def rate(self, queue: str) -> float:
        return self.arrivals_per_s.get(queue, 0.0)


@dataclass(slots=True)
class _Decayed:
    """Exponentially decayed sum: value(t) = sum of w_i * 2^(-(t - t_i) / half_life)."""

    half_life_s: float
    value: float = 0.0
    at: float = -math.inf

    def decay_to(self, now: float) -> None:
        if self.at == -math.inf:
            self.at = now
        elif now > self.at:
            self.value *= 0.5 ** ((now - self.at) / self.half_life_s)
            self.at = now

    def add(self, now: float, w: float) -> None:
        self.decay_to(now)
        self.value += w

    def get(self, now: float) -> float:
        self.decay_to(now)
        return self.value


@dataclass(slots=True)
class DecayedStats:
    """Online estimates from the events the live service (or the simulator) observes.

    ``prior_aht_s`` and ``prior_weight`` start every (queue, penalty) mean at a neutral value
    worth ``prior_weight`` calls; real completions outweigh it within minutes.
    """

    half_life_s: float = 900.0
    # Arrival rates forget faster than handle times: a surge must show within minutes,
    # while a handle-time mean needs many calls to be stable.
    arrival_half_life_s: float = 300.0
    prior_aht_s: float = 300.0
    prior_weight: float = 2.0
    _handle_sum: dict[tuple[str, int], _Decayed] = field(default_factory=dict)
    _handle_n: dict[tuple[str, int], _Decayed] = field(default_factory=dict)
    _arrivals: dict[str, _Decayed] = field(default_factory=dict)
    _abandons: _Decayed | None = None
    _exposure: _Decayed | None = None
    _first_seen: float = math.inf

    def _d(self) -> _Decayed:
        return _Decayed(self.half_life_s)

    def observe_arrival(self, queue: str, now: float) -> None:
        self._first_seen = min(self._first_seen, now)
        self._arrivals.setdefault(queue, _Decayed(self.arrival_half_life_s)).add(now, 1.0)

    def observe_handle(self, queue: str, skill: int, handle_s: float, now: float) -> None:
        key = (queue, skill)
        self._handle_sum.setdefault(key, self._d()).add(now, handle_s)
        self._handle_n.setdefault(key, self._d()).add(now, 1.0)

    def observe_wait_end(self, waited_s: float, abandoned: bool, now: float) -> None:
        """Every wait that ends (answered or abandoned) is exposure to the abandonment hazard."""
        if self._abandons is None or self._exposure is None:
            self._abandons, self._exposure = self._d(), self._d()
        self._exposure.add(now, waited_s)
        if abandoned:
            self._abandons.add(now, 1.0)

    def view(self, now: float) -> StatsView:
        aht: dict[tuple[str, int], float] = {}
        for key, s in self._handle_sum.items():
            n = self._handle_n[key].get(now)
            aht[key] = (s.get(now) + self.prior_aht_s * self.prior_weight) / (n + self.prior_weight)
        # A decayed count of a Poisson stream has mean rate * tau * (1 - exp(-t / tau)),
        # t the time observed so far: divide by that to estimate the current rate.
        tau = self.arrival_half_life_s / math.log(2.0)
        seen = max(now - self._first_seen, 1.0)
        span = tau * -math.expm1(-seen / tau)
        rates = {q: d.get(now) / span for q, d in self._arrivals.items()}
        theta = 0.0
        if self._abandons is not None and self._exposure is not None:
            exp_s = self._exposure.get(now)
            if exp_s > 0.0:
                theta = self._abandons.get(now) / exp_s
        return StatsView(aht, rates, theta, self.prior_aht_s)
