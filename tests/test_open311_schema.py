"""The public HTTP API against its own OpenAPI document, with schemathesis: generated requests
(valid and not) never get a server error, and every response matches the document."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings

from cases import CaseStore
from console.open311 import add_open311_routes
from console.openapi import open311_document
from tests.cases_fixtures import SECRET
from tests.test_open311 import KEY, SERVICES


class _Server:
    """The Open311 app with a real SQLite store, on its own loop in a thread (schemathesis
    sends its requests synchronously)."""

    def __init__(self, db: Path) -> None:
        self._db = db
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)

    async def _start(self) -> None:
        self.store = CaseStore(f"sqlite+aiosqlite:///{self._db}", secret_key=SECRET)
        await self.store.open()
        app = web.Application()
        add_open311_routes(app, self.store, api_keys={KEY}, services=SERVICES,
                           jurisdiction_id="sh")
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        async def _stop() -> None:
            await self.runner.cleanup()
            await self.store.close()
        asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Server]:
    s = _Server(tmp_path_factory.mktemp("o311") / "cases.db")
    s.start()
    yield s
    s.stop()


schema = schemathesis.openapi.from_dict(open311_document())


@schema.parametrize()
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_open311_matches_its_document(case: schemathesis.Case, server: _Server) -> None:
    # Every check but the two about acceptance. "A schema-valid request is accepted": the
    # document cannot say that a request needs a location (lat+long, an address or an
    # address id) or a service that exists (those 400/404 are the spec's, tested in
    # test_open311.py). "A schema-violating request is rejected": by the spec,
    # service_request_id overrides every other filter, so the others are not even read then.
    case.call_and_validate(base_url=f"http://127.0.0.1:{server.port}",
                           excluded_checks=[schemathesis.checks.positive_data_acceptance,
                                            schemathesis.checks.negative_data_rejection])


def test_the_document_is_served(server: _Server) -> None:
    import json
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/open311/v2/openapi.json") as r:
        assert json.load(r)["paths"].keys() == open311_document()["paths"].keys()
