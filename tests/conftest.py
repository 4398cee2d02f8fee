"""Shared fixtures. Test modules of each package keep their own fixtures beside them."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import pytest

Deadline = Callable[[float, str], AbstractAsyncContextManager[None]]


@pytest.fixture(autouse=True)
def _readable_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hotline")


def task_stacks() -> str:
    """Where every pending task of the running loop waits, for a report."""
    out = io.StringIO()
    for task in asyncio.all_tasks():
        task.print_stack(file=out)
    return out.getvalue()


@contextlib.asynccontextmanager
async def _deadline(seconds: float, what: str) -> AsyncIterator[None]:
    task = asyncio.current_task()
    assert task is not None
    stacks: list[str] = []

    def expire() -> None:
        # Taken before the cancellation unwinds them: this is where the wait hung.
        stacks.append(task_stacks())
        task.cancel()

    handle = asyncio.get_running_loop().call_later(seconds, expire)
    try:
        yield
    except asyncio.CancelledError:
        if not stacks:
            raise
    finally:
        handle.cancel()
    if stacks:
        # Also when the body swallowed our cancellation and went on: it overran all the same.
        task.uncancel()
        pytest.fail(f"{what}: still waiting after {seconds:g}s; pending tasks:\n{stacks[0]}",
                    pytrace=False)


@pytest.fixture
def deadline() -> Deadline:
    """``async with deadline(30, "stopping the service"):`` fails the test, with every
    pending task's stack, instead of letting a lost wake-up hang the run."""
    return _deadline
