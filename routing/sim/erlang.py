"""Erlang C (M/M/c) closed forms, the reference the simulator is validated against."""

from __future__ import annotations


def erlang_b(servers: int, erlangs: float) -> float:
    """Blocking probability by the stable recursion B(n) = a B(n-1) / (n + a B(n-1))."""
    b = 1.0
    for n in range(1, servers + 1):
        b = erlangs * b / (n + erlangs * b)
    return b


def erlang_c(servers: int, erlangs: float) -> float:
    """Probability that an arriving caller waits (requires erlangs < servers)."""
    if erlangs >= servers:
        return 1.0
    b = erlang_b(servers, erlangs)
    return servers * b / (servers - erlangs * (1.0 - b))


def erlang_c_asa(servers: int, erlangs: float, handle_mean_s: float) -> float:
    """Mean wait of all callers: C(c, a) * AHT / (c - a)."""
    if erlangs >= servers:
        return float("inf")
    return erlang_c(servers, erlangs) * handle_mean_s / (servers - erlangs)
