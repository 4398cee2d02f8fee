"""Open311 GeoReport v2 endpoints (aiohttp test client), on SQLite and PostgreSQL."""

# Fixtures are imported from tests.cases_fixtures, and pytest injects them by parameter name:
# that is not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cases import Action, CaseStore, CaseType
from console.open311 import Open311Service, add_open311_routes
from tests.cases_fixtures import (  # noqa: F401
    DEPARTMENTS,
    Backend,
    FakeClock,
    backend,
    call_start,
    pg_url,
)

KEY = "k-test-123"
BASE = "/open311/v2"
SERVICES = [
    Open311Service(service_code="pothole", service_name="Pothole", description="Road damage",
                   group="streets", keywords=("road", "asphalt"), case_type=CaseType.COMPLAINT,
                   notice="Inspected within 2 working days"),
    Open311Service(service_code="water-leak", service_name="Water leak", topic="water"),
]
FORM = {"api_key": KEY, "service_code": "pothole", "lat": "31.2304", "long": "121.4737",
        "description": "深坑 near the crossing", "email": "zhang@example.org",
        "first_name": "San", "last_name": "Zhang", "phone": "13800138000",
        "media_url": "https://img.example.org/1.jpg"}
# The names and details a response must never show.
PRIVATE = ("zhang@example.org", "13800138000", "San", "Zhang", "138****8000", "email", "phone",
           "first_name", "last_name", "caller")

Api = tuple[TestClient[web.Request, web.Application], CaseStore, FakeClock]


@pytest.fixture
async def api(backend: Backend) -> AsyncIterator[Api]:
    # "Now" (the default date range ends now), in whole seconds as the responses show times.
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    store = backend.store(clock=clock)
    await store.open()
    await store.load_departments(DEPARTMENTS)
    app = web.Application()
    add_open311_routes(app, store, api_keys={KEY}, services=SERVICES, jurisdiction_id="sh")
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield client, store, clock
    finally:
        await client.close()
        await store.close()


async def post(client: TestClient[web.Request, web.Application], data: dict[str, str],
               *, as_json: bool = False) -> tuple[int, Any]:
    kw: dict[str, Any] = {"json": data} if as_json else {"data": data}
    async with client.post(f"{BASE}/requests.json", **kw) as r:
        return r.status, await r.json()


async def get(client: TestClient[web.Request, web.Application], path: str,
              **params: str) -> tuple[int, Any]:
    async with client.get(f"{BASE}/{path}", params=params) as r:
        assert r.content_type == "application/json"
        return r.status, await r.json()


def assert_error(status: int, body: Any, code: int, *fragments: str) -> None:
    assert status == code, body
    assert isinstance(body, list) and body
    assert all(set(e) == {"code", "description"} and e["code"] == code for e in body)
    text = " | ".join(e["description"] for e in body)
    for fragment in fragments:
        assert fragment in text, text


async def test_services(api: Api) -> None:
    client, _, _ = api
    status, body = await get(client, "services.json")
    assert status == 200
    assert body[0] == {"service_code": "pothole", "service_name": "Pothole",
                       "description": "Road damage", "metadata": False, "type": "realtime",
                       "keywords": "road,asphalt", "group": "streets"}
    assert [s["service_code"] for s in body] == ["pothole", "water-leak"]


async def test_post_creates_a_case_and_get_shows_it(api: Api) -> None:
    client, store, _ = api
    status, body = await post(client, FORM)
    assert status == 200
    [created] = body
    number = created["service_request_id"]
    assert created == {"service_request_id": number,
                       "service_notice": "Inspected within 2 working days", "account_id": None}

    case = await store.get(number)
    assert case is not None
    assert (case.channel, case.topic, case.case_type, case.status) == (
        "open311", "pothole", "complaint", "accepted")
    assert (case.lat, case.lon, case.media_url) == (31.2304, 121.4737, FORM["media_url"])
    assert case.caller_masked == "138****8000" and case.caller_name == "San Zhang"
    assert await store.reveal_number(number, actor="t", reason="test") == "13800138000"
    assert await store.reveal_email(number, actor="t", reason="test") == "zhang@example.org"

    status, body = await get(client, f"requests/{number}.json")
    assert status == 200
    [req] = body
    assert set(req) == {"service_request_id", "status", "status_notes", "service_name",
                        "service_code", "description", "agency_responsible", "service_notice",
                        "requested_datetime", "updated_datetime", "expected_datetime",
                        "address", "address_id", "zipcode", "lat", "long", "media_url"}
    assert (req["status"], req["service_code"], req["service_name"]) == (
        "open", "pothole", "Pothole")
    assert (req["lat"], req["long"], req["description"]) == (31.2304, 121.4737,
                                                             FORM["description"])
    requested = datetime.fromisoformat(req["requested_datetime"])
    assert requested.utcoffset() == timedelta(hours=8) and requested == case.created_at
    assert datetime.fromisoformat(req["expected_datetime"]) == case.deadline
    for word in PRIVATE:
        assert word not in str(req)


async def test_post_json_and_address_only(api: Api) -> None:
    client, store, _ = api
    data = {"api_key": KEY, "service_code": "water-leak", "address_string": "南京东路 100 号",
            "description": "x" * 4000}  # exactly the limit
    status, body = await post(client, data, as_json=True)
    assert status == 200
    case = await store.get(body[0]["service_request_id"])
    assert case is not None and case.topic == "water" and case.address == "南京东路 100 号"
    assert case.case_type == "help" and case.lat is None


async def test_lifecycle_shows_in_the_status(api: Api) -> None:
    client, store, clock = api
    _, [a] = await post(client, FORM)
    _, [b] = await post(client, FORM)
    na, nb = a["service_request_id"], b["service_request_id"]
    clock.advance(minutes=10)
    await store.transition(na, Action.DISPATCH, actor="a", department="water-co")
    clock.advance(minutes=10)
    await store.transition(nb, Action.MERGE, actor="a", master=na)

    _, [ra] = await get(client, f"requests/{na}.json")
    assert ra["agency_responsible"] == "城投水务" and ra["status"] == "open"
    assert ra["status_notes"] == "dispatched (派单)"
    assert datetime.fromisoformat(ra["expected_datetime"]) == (await store.get(na)).deadline  # type: ignore[union-attr]
    _, [rb] = await get(client, f"requests/{nb}.json")
    assert (rb["status"], rb["status_notes"]) == ("closed", f"duplicate of {na}")
    assert datetime.fromisoformat(rb["updated_datetime"]) == clock.now

    _, listed = await get(client, "requests.json", status="closed")
    assert [r["service_request_id"] for r in listed] == [nb]
    _, listed = await get(client, "requests.json", status="open,closed")
    assert [r["service_request_id"] for r in listed] == [nb, na]  # newest first


async def test_list_filters(api: Api) -> None:
    client, store, clock = api
    _, [p1] = await post(client, FORM)
    clock.advance(minutes=1)
    _, [w1] = await post(client, {"api_key": KEY, "service_code": "water-leak",
                                  "lat": "31.2", "long": "121.4"})
    await store.open_call_case(call_start("phone.1"))  # a phone case: never listed
    ids = [p1["service_request_id"], w1["service_request_id"]]

    _, body = await get(client, "requests.json")
    assert [r["service_request_id"] for r in body] == ids[::-1]
    _, body = await get(client, "requests.json", service_code="water-leak")
    assert [r["service_request_id"] for r in body] == [ids[1]]
    _, body = await get(client, "requests.json", service_request_id=f"{ids[0]}, 20990101000001",
                        service_code="water-leak")  # the id list overrides other filters
    assert [r["service_request_id"] for r in body] == [ids[0]]
    _, body = await get(client, "requests.json", status="open", jurisdiction_id="sh")
    assert len(body) == 2

    created = (await store.get(ids[0])).created_at  # type: ignore[union-attr]
    window = {"start_date": (created - timedelta(days=1)).isoformat(),
              "end_date": (created + timedelta(seconds=30)).isoformat()}
    _, body = await get(client, "requests.json", **window)
    assert [r["service_request_id"] for r in body] == [ids[0]]
    _, body = await get(client, "requests.json",
                        start_date=(created + timedelta(days=1)).isoformat())
    assert body == []

    phone_case = (await store.list_cases())[0]
    status, body = await get(client, f"requests/{phone_case.number}.json")
    assert_error(status, body, 404, "not found")


POST_ERRORS: list[tuple[dict[str, str | None], int, list[str]]] = [
    ({"api_key": None}, 403, ["api_key"]),
    ({"api_key": "wrong"}, 403, ["api_key"]),
    ({"service_code": "unicorn"}, 400, ["service_code unicorn not found"]),
    ({"service_code": None}, 400, ["service_code is required"]),
    ({"lat": None, "long": None}, 400, ["a location is required"]),
    ({"long": None}, 400, ["lat and long go together"]),
    ({"lat": "north"}, 400, ["lat is not a number"]),
    ({"lat": "91"}, 400, ["lat must be between -90 and 90"]),
    ({"description": "x" * 4001}, 400, ["description is 4001 characters; at most 4000"]),
    ({"media_url": "javascript:alert(1)"}, 400, ["media_url"]),
    ({"jurisdiction_id": "beijing"}, 404, ["jurisdiction_id beijing not found"]),
    # Several problems are reported together.
    ({"service_code": "unicorn", "lat": None, "long": None, "description": "x" * 4001}, 400,
     ["service_code unicorn", "a location is required", "description is 4001"]),
]


async def test_post_errors(api: Api) -> None:
    client, store, _ = api
    for change, code, fragments in POST_ERRORS:
        data = {k: v for k, v in (FORM | change).items() if v is not None}
        status, body = await post(client, data)
        assert_error(status, body, code, *fragments)
    assert await store.count() == 0  # no refused request left a case


async def test_get_errors(api: Api) -> None:
    client, _, _ = api
    for path, params, code, fragment in [
        ("requests/20260310000001.json", {}, 404, "20260310000001 not found"),
        ("requests.json", {"service_code": "unicorn"}, 400, "service_code unicorn not found"),
        ("requests.json", {"status": "pending"}, 400, "status must be open or closed"),
        ("requests.json", {"start_date": "yesterday"}, 400, "start_date is not a W3C datetime"),
        ("requests.json", {"end_date": "2026-03-10T10:00:00"}, 400, "needs a time zone"),
        ("requests.json", {"start_date": "2026-01-01T00:00:00Z",
                           "end_date": "2026-06-01T00:00:00Z"}, 400, "more than 90 days"),
        ("requests.json", {"start_date": "2026-03-02T00:00:00Z",
                           "end_date": "2026-03-01T00:00:00Z"}, 400, "before start_date"),
        ("services.json", {"jurisdiction_id": "x"}, 404, "jurisdiction_id x not found"),
        ("nothing-here.json", {}, 404, "no such resource"),
    ]:
        status, body = await get(client, path, **params)
        assert_error(status, body, code, fragment)
    async with client.post(f"{BASE}/requests.json", data="{not json",
                           headers={"Content-Type": "application/json"}) as r:
        assert_error(r.status, await r.json(), 400, "not valid JSON")
