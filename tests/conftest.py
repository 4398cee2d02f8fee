"""Shared fixtures. Test modules of each package keep their own fixtures beside them."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture(autouse=True)
def _readable_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hotline")
