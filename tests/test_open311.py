"""Open311 GeoReport v2 endpoints (aiohttp test client), on SQLite and PostgreSQL."""

# Fixtures are imported from tests.cases_fixtures, and pytest injects them by parameter name:
# that is not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cases import Action, CaseIntake, CaseStore, CaseType
from console.app import build_app
from console.auth import demo_users
from console.open311 import Open311Service, add_open311_routes
from console.settings import ConsoleSettings
from ivr.config import ConfigError, load_config
from ivr.service import HotlineService
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
    ({"service_code": "unicorn"}, 404, ["service_code unicorn not found"]),
    ({"service_code": None}, 400, ["service_code is required"]),
    ({"lat": None, "long": None}, 400, ["a location is required"]),
    ({"long": None}, 400, ["lat and long go together"]),
    ({"lat": "north"}, 400, ["lat is not a number"]),
    ({"lat": "91"}, 400, ["lat must be between -90 and 90"]),
    ({"description": "x" * 4001}, 400, ["description is 4001 characters; at most 4000"]),
    ({"media_url": "javascript:alert(1)"}, 400, ["media_url"]),
    ({"jurisdiction_id": "beijing"}, 404, ["jurisdiction_id beijing not found"]),
    ({"lat": None, "long": None, "description": "x" * 4001}, 400,
     ["a location is required", "description is 4001"]),
]


async def test_post_errors(api: Api) -> None:
    client, store, _ = api
    for change, code, fragments in POST_ERRORS:
        data = {k: v for k, v in (FORM | change).items() if v is not None}
        status, body = await post(client, data)
        assert_error(status, body, code, *fragments)
    # Several problems of different kinds: all reported, each with its own code.
    data = {k: v for k, v in FORM.items() if k not in ("lat", "long")}
    status, body = await post(client, data | {"service_code": "unicorn"})
    assert status == 400
    assert body == [{"code": 404, "description": "service_code unicorn not found"},
                    {"code": 400, "description": "a location is required: lat and long, "
                                                 "address_string or address_id"}]
    assert await store.count() == 0  # no refused request left a case


async def test_get_errors(api: Api) -> None:
    client, _, _ = api
    for path, params, code, fragment in [
        ("requests/20260310000001.json", {}, 404, "20260310000001 not found"),
        ("requests.json", {"service_code": "unicorn"}, 404, "service_code unicorn not found"),
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


async def test_text_no_database_can_store_is_a_400(api: Api) -> None:
    """A NUL character (PostgreSQL refuses it) or a lone surrogate in a JSON body (not
    Unicode): the spec's 400 naming the field, on both databases, and no case."""
    client, store, _ = api
    for field in ("description", "address_string", "first_name", "phone", "email"):
        status, body = await post(client, FORM | {field: "x\x00y"})
        assert_error(status, body, 400, f"{field} contains a NUL character")
    async with client.post(f"{BASE}/requests.json", headers={"Content-Type": "application/json"},
                           data=b'{"api_key": "%s", "service_code": "pothole", '
                                b'"address_string": "\\ud83d road"}' % KEY.encode()) as r:
        assert_error(r.status, await r.json(), 400, "address_string is not valid Unicode")
    assert await store.count() == 0
    # Looked up, such ids match nothing (rather than upset the database).
    status, body = await get(client, "requests.json", service_request_id="\x00,1")
    assert (status, body) == (200, [])
    status, body = await get(client, "requests/%00.json")
    assert_error(status, body, 404, "not found")


async def test_dates_at_the_ends_of_the_calendar(api: Api) -> None:
    """Dates whose 90-day default span, or whose UTC time, falls outside what a datetime
    holds: the spec's 400, not a server error; within it, an empty answer on both databases."""
    client, _, _ = api
    for params, fragment in [
        ({"start_date": "9999-12-30T00:00:00Z"}, "90 days from it do not fit"),
        ({"end_date": "0001-01-02T00:00:00Z"}, "90 days from it do not fit"),
        ({"start_date": "0001-01-01T00:00:00+08:00",
          "end_date": "0001-01-02T00:00:00+08:00"}, "start_date is outside the calendar"),
        ({"start_date": "9999-12-30T00:00:00Z",
          "end_date": "9999-12-31T23:59:59-08:00"}, "end_date is outside the calendar"),
    ]:
        status, body = await get(client, "requests.json", **params)
        assert_error(status, body, 400, fragment)
    for params in [{"start_date": "0001-01-01T00:00:00Z", "end_date": "0001-01-02T00:00:00Z"},
                   {"start_date": "9999-12-01T00:00:00Z", "end_date": "9999-12-31T00:00:00Z"}]:
        assert await get(client, "requests.json", **params) == (200, [])


async def test_a_store_error_is_the_specs_503(api: Api, backend: Backend) -> None:
    """A request the store cannot show (its submitter's details encrypted with another
    secret key): the spec's error shape with 503, without the store's internals."""
    client, _, _ = api
    other = backend.foreign_store()
    await other.open()
    try:
        case = await other.open_case(CaseIntake(channel="open311", submission_id="k.1",
                                                topic="pothole", caller_number="13800138000"))
    finally:
        await other.close()
    status, body = await get(client, f"requests/{case.number}.json")
    assert_error(status, body, 503, "could not process this request")
    assert "secret" not in str(body) and "decrypt" not in str(body)


# ---- through the console app, configured by [open311] ------------------------------------

WIRED_KEY = "k-wired-0123456789abcdef"
OPEN311_TOML = f"""
[open311]
jurisdiction_id = "hz12345"
api_keys = ["{WIRED_KEY}"]
"""


async def test_the_console_serves_open311_as_configured(tmp_path: Path) -> None:
    path = tmp_path / "hotline.toml"
    path.write_text(OPEN311_TOML + f"""
[database]
url = "sqlite+aiosqlite:///{tmp_path / 'cases.db'}"
""", encoding="utf-8")
    cfg = load_config(path, env={})
    service = HotlineService(cfg)      # its AMI link is never started: not needed here
    await service.store.open()
    app = build_app(service, settings=ConsoleSettings(audit_log=str(tmp_path / "audit.jsonl")),
                    users=demo_users())
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        # No [[open311.services]]: one service per IVR topic, with its keywords.
        status, services = await get(client, "services.json")
        assert status == 200
        assert [s["service_code"] for s in services] == [t.name for t in cfg.topics]
        water = services[0]
        assert water["service_name"] == "Water" and "停水" in water["keywords"].split(",")

        good = {"api_key": WIRED_KEY, "service_code": "water", "lat": "30.27",
                "long": "120.15", "description": "停水 since the morning",
                "jurisdiction_id": "hz12345"}
        # The spec's errors, as a client without a browser session sends them (no cookie,
        # no CSRF token: the key is the credential).
        for change, code, fragment in [
            ({"service_code": "unicorn"}, 404, "service_code unicorn not found"),
            ({"lat": None, "long": None}, 400, "a location is required"),
            ({"description": "长" * 4001}, 400, "description is 4001 characters"),
            ({"api_key": "k-wired-0123456789abcdeX"}, 403, "api_key"),
            ({"api_key": None}, 403, "api_key"),
            ({"jurisdiction_id": "sh"}, 404, "jurisdiction_id sh not found"),
        ]:
            data = {k: v for k, v in (good | change).items() if v is not None}
            status, body = await post(client, data)
            assert_error(status, body, code, fragment)
        assert await service.store.count() == 0

        status, [created] = await post(client, good)
        assert status == 200
        status, [req] = await get(client, f"requests/{created['service_request_id']}.json")
        assert status == 200
        assert (req["service_code"], req["status"], req["lat"]) == ("water", "open", 30.27)
        # The console's own pages still need a login; Open311 never hands out a session.
        async with client.get("/api/board") as r:
            assert r.status in (401, 403)
    finally:
        await client.close()
        await service.store.close()


def test_open311_config_errors_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "hotline.toml"
    path.write_text('[open311]\napi_keys = ["short"]\n', encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(path, env={})
    assert str(path) in str(e.value) and "open311.api_keys" in str(e.value)
    assert "shorter than 16" in str(e.value) and "short\"" not in str(e.value)
    path.write_text('[[open311.services]]\nservice_code = "a"\nservice_name = "A"\n'
                    'case_type = "praise"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="open311.services.0.case_type"):
        load_config(path, env={})
