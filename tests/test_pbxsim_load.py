"""pbxsim's load generator (used by ``bench.load``) offers the load the benchmark describes:
never more than ``concurrency`` calls at once, the first wave spread over one call's length,
and each later call placed only when one ends, so no burst of simultaneous arrivals."""

from __future__ import annotations

import itertools

import pytest

from pbxsim import PbxSim, SimConfig
from pbxsim.load import LoadPlan, run_load

# Every call holds the line for 2 simulated seconds, then hangs up: no service needed.
HOLD_DIALPLAN = """\
[general]
static=yes
[ivr]
exten => s,1,Answer()
 same => n,Wait(2)
 same => n,Hangup()
"""


class _Observed:
    """Runs ``plan`` on a pbxsim and records, in simulated seconds, when each call was
    placed and ended, and the most calls in progress at once."""

    def __init__(self) -> None:
        self.placed: list[float] = []
        self.ended: list[float] = []
        self.max_in_flight = 0
        self._in_flight = 0

    async def run(self, plan: LoadPlan) -> dict[str, object]:
        # Speed 5: the tolerances below (0.1-0.2 simulated s) are 20-40 ms of real time.
        sim = PbxSim(SimConfig(host="127.0.0.1", port=0, speed=5.0, dialplan=HOLD_DIALPLAN))
        await sim.start()
        place = sim.place_call

        async def observed_place_call(script):  # type: ignore[no-untyped-def]
            self.placed.append(sim.clock.elapsed())
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            handle = await place(script)

            def on_done(_: object) -> None:
                self._in_flight -= 1
                self.ended.append(sim.clock.elapsed())
            handle.done.add_done_callback(on_done)
            return handle

        sim.place_call = observed_place_call  # type: ignore[method-assign]
        try:
            return await run_load(sim, plan)
        finally:
            await sim.stop()


async def test_load_generator_spreads_the_first_wave_and_bounds_concurrency() -> None:
    seen = _Observed()
    result = await seen.run(LoadPlan(calls=12, concurrency=4, agents=0, queues=("water",),
                                     keys=("1",), talk_s=2.0))
    placed = seen.placed
    assert result["calls"] == 12 and len(placed) == 12
    assert seen.max_in_flight <= 4
    # First wave: one arrival every talk_s / concurrency = 0.5 simulated seconds.
    first = [t - placed[0] for t in placed[:4]]
    assert first == pytest.approx([0.0, 0.5, 1.0, 1.5], abs=0.2)
    # Later calls replace ended ones one by one: arrivals stay spread, never a wave.
    gaps = [b - a for a, b in itertools.pairwise(placed[4:])]
    assert min(gaps) > 0.2, f"calls arrived in a burst: {placed}"
    ended = sorted(seen.ended)
    for n, t in enumerate(placed[4:]):
        assert t >= ended[n] - 0.05, f"call {n + 4} placed before a slot was free"


async def test_a_surge_places_the_whole_first_wave_at_once() -> None:
    seen = _Observed()
    await seen.run(LoadPlan(calls=6, concurrency=3, agents=0, queues=("water",), keys=("1",),
                            talk_s=2.0, first_wave_s=0.0))
    placed = seen.placed
    assert placed[2] - placed[0] < 0.1          # the first three together
    assert placed[3] - placed[0] > 1.5          # the fourth only once one has ended
