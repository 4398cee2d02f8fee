"""Open311 GeoReport v2 (JSON) on the aiohttp app: the web and app channel of the case store.

Endpoints under ``/open311/v2`` (``base`` to change it)::

    GET  services.json            the service list (what a request may be about)
    GET  requests.json            requests, filtered by service_request_id (comma list; it
                                  overrides the rest), service_code, start_date, end_date
                                  (≤ 90 days apart; default the last 90 days) and status
                                  (open, closed or both); newest first, at most 1000
    POST requests.json            a new request (form or JSON body); api_key, service_code and a
                                  location (lat+long, address_string or address_id) required;
                                  description ≤ 4000 characters; optional email, first_name,
                                  last_name, phone, media_url
    GET  requests/{id}.json       one request, as an array of one (as the spec shows it)

Errors are the spec's: a JSON array of ``{"code": <HTTP status>, "description": "..."}`` with
400 (bad or missing fields: no location, too long a description, ...), 403 (missing or unknown
api key; checked first) and 404 (unknown service code, request, jurisdiction or path). A
request with several problems gets them all, each with its own code (status 400 when they
differ).

``[open311]`` in the configuration (``ivr.config.Open311Config``) sets the API keys, the
jurisdiction and the services; ``console.app.build_app`` adds the routes with it.

Privacy: submitters' details (name, e-mail, phone) go to the store encrypted or masked and are
never part of a response. Only cases that came in through a public channel (``open311`` by
default) are listed: phone cases can carry complaints and reports (举报) whose publication could
expose the caller.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cases import (
    CaseIntake,
    CaseStatus,
    CaseStore,
    CaseStoreError,
    CaseStoreUnavailable,
    CaseType,
    CaseView,
)
from cases.lifecycle import FINAL_STATES, OPEN_STATES
from cases.text import storable
from console.openapi import add_openapi_route

if TYPE_CHECKING:
    from ivr.config import HotlineConfig

log = logging.getLogger("hotline.web.open311")

CHANNEL = "open311"
MAX_DESCRIPTION = 4000
MAX_RESULTS = 1000
MAX_SPAN = timedelta(days=90)
_CASE_NUMBER = re.compile(r"[0-9]{14}")   # YYYYMMDD + the day's 6-digit sequence
_STATUS_STATES = {"open": OPEN_STATES, "closed": FINAL_STATES}


class Open311Service(BaseModel):
    """One service of ``services.json`` and how its requests become cases."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    service_code: str = Field(min_length=1, max_length=64)
    service_name: str = Field(min_length=1)
    description: str = ""
    group: str = ""
    keywords: tuple[str, ...] = ()
    type: str = Field(default="realtime", pattern="^(realtime|batch|blackbox)$")
    topic: str | None = Field(default=None, max_length=64)  # the case topic; default the code
    case_type: CaseType = CaseType.HELP
    notice: str | None = None  # service_notice: what the submitter can expect

    @property
    def case_topic(self) -> str:
        return self.topic or self.service_code

    def as_json(self) -> dict[str, Any]:
        return {"service_code": self.service_code, "service_name": self.service_name,
                "description": self.description, "metadata": False, "type": self.type,
                "keywords": ",".join(self.keywords), "group": self.group}


class Open311Error(Exception):
    def __init__(self, status: int, *descriptions: str) -> None:
        self.errors = [(status, d) for d in descriptions]
        super().__init__("; ".join(descriptions))
        self.status = status

    @classmethod
    def several(cls, errors: list[tuple[int, str]]) -> Open311Error:
        """Every problem of a request at once, each with its own code; the response's status
        is theirs when they agree, else 400 (the request as a whole is bad)."""
        codes = {code for code, _ in errors}
        e = cls(codes.pop() if len(codes) == 1 else 400)
        e.errors = list(errors)
        e.args = ("; ".join(d for _, d in errors),)
        return e

    def response(self) -> web.Response:
        return web.json_response([{"code": code, "description": d} for code, d in self.errors],
                                 status=self.status)


class _Api:
    def __init__(self, store: CaseStore, api_keys: set[str], services: Iterable[Open311Service],
                 jurisdiction_id: str | None, public_channels: frozenset[str]) -> None:
        self.store = store
        self.api_keys = frozenset(api_keys)
        self.services = {s.service_code: s for s in services}
        # The first service of a topic names it in responses.
        self.by_topic = {s.case_topic: s for s in reversed(list(self.services.values()))}
        self.jurisdiction_id = jurisdiction_id
        self.public_channels = public_channels

    # -- handlers --------------------------------------------------------------------------

    async def services_json(self, request: web.Request) -> web.Response:
        self._check_jurisdiction(request.query)
        return web.json_response([s.as_json() for s in self.services.values()])

    async def list_requests(self, request: web.Request) -> web.Response:
        q = request.query
        self._check_jurisdiction(q)
        ids = _csv(q.get("service_request_id"))
        if ids:  # the spec: a list of ids overrides every other filter
            # Only what can be a case number is looked up: the rest matches nothing anyway,
            # and some (a NUL character) the database would refuse rather than not find.
            cases = await self.store.find_cases(
                numbers=[i for i in ids if _CASE_NUMBER.fullmatch(i)],
                channels=self.public_channels, limit=MAX_RESULTS)
            return await self._requests(cases)
        topics = None
        if code := q.get("service_code"):
            topics = [self._service(code).case_topic]
        start, end = self._date_range(q.get("start_date"), q.get("end_date"))
        statuses: set[str] | None = None
        if wanted := _csv(q.get("status")):
            unknown = [w for w in wanted if w not in _STATUS_STATES]
            if unknown:
                raise Open311Error(400, f"status must be open or closed, not {unknown[0]!r}")
            statuses = {s.value for w in wanted for s in _STATUS_STATES[w]}
        cases = await self.store.find_cases(
            channels=self.public_channels, topics=topics, statuses=statuses,
            created_from=start, created_to=end, limit=MAX_RESULTS)
        return await self._requests(cases)

    async def get_request(self, request: web.Request) -> web.Response:
        self._check_jurisdiction(request.query)
        number = request.match_info["id"]
        found = (await self.store.find_cases(numbers=[number], channels=self.public_channels)
                 if _CASE_NUMBER.fullmatch(number) else [])
        if not found:
            raise Open311Error(404, f"service_request_id {number} not found")
        return await self._requests(found)

    async def post_request(self, request: web.Request) -> web.Response:
        form = await _submitted(request)
        key = form.get("api_key")
        if not key or key not in self.api_keys:
            raise Open311Error(403, "api_key is missing or not valid")
        self._check_jurisdiction(form)
        intake, service = self._intake(form)
        case = await self.store.open_case(intake)
        return web.json_response([{"service_request_id": case.number,
                                   "service_notice": service.notice, "account_id": None}])

    # -- helpers ---------------------------------------------------------------------------

    def _check_jurisdiction(self, params: Mapping[str, str]) -> None:
        given = params.get("jurisdiction_id")
        if given and self.jurisdiction_id is not None and given != self.jurisdiction_id:
            raise Open311Error(404, f"jurisdiction_id {given} not found")

    def _service(self, code: str) -> Open311Service:
        service = self.services.get(code)
        if service is None:
            raise Open311Error(404, f"service_code {code} not found")
        return service

    def _date_range(self, start_s: str | None, end_s: str | None) -> tuple[datetime, datetime]:
        start, end = _when("start_date", start_s), _when("end_date", end_s)
        try:
            if start is None and end is None:
                end = self.store.now() + timedelta(seconds=1)
            if start is None:
                assert end is not None
                start = end - MAX_SPAN
            if end is None:
                end = start + MAX_SPAN
        except OverflowError:
            # e.g. start_date in December 9999: the default 90 days after it are past the
            # last day a datetime can hold.
            raise Open311Error(400, "start_date or end_date is so near the calendar's end "
                                    "that the 90 days from it do not fit; give both") from None
        if end < start:
            raise Open311Error(400, "end_date is before start_date")
        if end - start > MAX_SPAN:
            raise Open311Error(400, "start_date and end_date may not span more than 90 days")
        return start, end

    def _intake(self, form: Mapping[str, str]) -> tuple[CaseIntake, Open311Service]:
        problems: list[str] = []
        missing_service: str | None = None   # the spec answers an unknown code with 404
        code = form.get("service_code", "").strip()
        service = self.services.get(code)
        if not code:
            problems.append("service_code is required")
        elif service is None:
            missing_service = f"service_code {code} not found"
        lat, lon = _float(form, "lat", 90, problems), _float(form, "long", 180, problems)
        address = form.get("address_string", "").strip() or None
        address_id = form.get("address_id", "").strip()
        if address is None and address_id:
            address = f"address_id {address_id}"  # no address repository to resolve it yet
        if ("lat" in form) != ("long" in form):
            problems.append("lat and long go together")
        elif (lat is None or lon is None) and address is None:
            problems.append("a location is required: lat and long, address_string or "
                            "address_id")
        description = form.get("description", "").strip() or None
        if description is not None and len(description) > MAX_DESCRIPTION:
            problems.append(f"description is {len(description)} characters; at most "
                            f"{MAX_DESCRIPTION}")
        media_url = form.get("media_url", "").strip() or None
        if media_url is not None and not media_url.startswith(("http://", "https://")):
            problems.append("media_url must be an http or https URL")
        if problems or service is None:
            raise Open311Error.several(
                ([(404, missing_service)] if missing_service else [])
                + [(400, p) for p in problems])
        name = " ".join(p for p in (form.get("first_name", "").strip(),
                                    form.get("last_name", "").strip()) if p) or None
        try:
            intake = CaseIntake(
                channel=CHANNEL, submission_id=uuid.uuid4().hex, case_type=service.case_type,
                topic=service.case_topic, description=description, address=address, lat=lat,
                lon=lon, media_url=media_url,
                caller_number=form.get("phone", "").strip() or None, caller_name=name,
                caller_email=form.get("email", "").strip() or None)
        except ValidationError as e:
            raise Open311Error(400, *(f"{'.'.join(map(str, err['loc']))}: {err['msg']}"
                                      for err in e.errors())) from None
        return intake, service

    async def _requests(self, cases: list[CaseView]) -> web.Response:
        names: dict[str, str | None] = {}
        for code in {c.department for c in cases if c.department}:
            d = await self.store.department(code)
            names[code] = None if d is None else d.name
        return web.json_response([self._request_json(c, names) for c in cases])

    def _request_json(self, c: CaseView, departments: Mapping[str, str | None]) -> dict[str, Any]:
        """The spec's fields only: no caller details, not even masked."""
        service = self.by_topic.get(c.topic) if c.topic else None
        closed = c.status in FINAL_STATES
        updated = c.closed_at if closed and c.closed_at else c.updated_at
        return {
            "service_request_id": c.number,
            "status": "closed" if closed else "open",
            "status_notes": _status_notes(c),
            "service_name": service.service_name if service else c.topic,
            "service_code": service.service_code if service else c.topic,
            "description": c.description,
            "agency_responsible": departments.get(c.department) if c.department else None,
            "service_notice": service.notice if service else None,
            "requested_datetime": self._time(c.created_at),
            "updated_datetime": self._time(updated),
            "expected_datetime": self._time(c.deadline),
            "address": c.address,
            "address_id": None,
            "zipcode": None,
            "lat": c.lat,
            "long": c.lon,
            "media_url": c.media_url,
        }

    def _time(self, at: datetime | None) -> str | None:
        # W3C / ISO 8601 with the centre's offset, e.g. 2026-03-10T10:00:00+08:00.
        return None if at is None else at.astimezone(self.store.timezone).isoformat("T",
                                                                                    "seconds")


def _status_notes(c: CaseView) -> str:
    if c.status == CaseStatus.MERGED and c.merged_into:
        return f"duplicate of {c.merged_into}"
    if isinstance(c.status, CaseStatus):
        return f"{c.status.value} ({c.status.label_zh})"
    return str(c.status)


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _when(name: str, value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        # An unencoded "+08:00" arrives as " 08:00" (form encoding): put the plus back.
        at = datetime.fromisoformat(value.strip().replace(" ", "+"))
    except ValueError:
        raise Open311Error(400, f"{name} is not a W3C datetime: {value!r}") from None
    if at.tzinfo is None:
        raise Open311Error(400, f"{name} needs a time zone (Z or ±hh:mm): {value!r}")
    try:
        return at.astimezone(UTC)   # in UTC as the store compares; 0001-01-01+08:00 is not
    except OverflowError:
        raise Open311Error(400, f"{name} is outside the calendar in UTC: {value!r}") from None


def _float(form: Mapping[str, str], name: str, bound: float, problems: list[str]) -> float | None:
    raw = form.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        problems.append(f"{name} is not a number: {raw!r}")
        return None
    if not -bound <= value <= bound:
        problems.append(f"{name} must be between -{bound:g} and {bound:g}")
        return None
    return value


async def _submitted(request: web.Request) -> dict[str, str]:
    """Query parameters overlaid with the body: a form (the spec's encoding) or JSON."""
    fields = dict(request.query)
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise Open311Error(400, "the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise Open311Error(400, "the JSON body must be an object")
        fields.update({k: "" if v is None else str(v) for k, v in body.items()})
    else:
        try:
            post = await request.post()
        except (ValueError, UnicodeDecodeError) as e:
            # e.g. multipart/form-data without a boundary: the client's fault, not ours.
            raise Open311Error(400, f"the form body cannot be read: {e}") from None
        fields.update({k: v for k, v in post.items() if isinstance(v, str)})
    # A NUL character (PostgreSQL refuses it) or a lone surrogate (a JSON "\ud83d" alone: not
    # Unicode, no database stores it) is the client's mistake: say which field, store nothing.
    problems = []
    for k, v in fields.items():
        for what, text in ((f"the field name {k!r}", k), (k, v)):
            try:
                storable(text)
            except ValueError as e:
                problems.append(f"{what} {e}")
                break      # a bad name: its value is not worth a second message
    if problems:
        raise Open311Error(400, *problems)
    return fields


def services_from_config(cfg: HotlineConfig) -> list[Open311Service]:
    """``[[open311.services]]``, or one service per IVR topic when there are none (the same
    topics the phone line sorts calls into, with their keywords)."""
    if cfg.open311.services:
        return [Open311Service(**{**s.model_dump(), "keywords": tuple(s.keywords),
                                  "case_type": CaseType(s.case_type)})
                for s in cfg.open311.services]
    return [Open311Service(service_code=t.name,
                           service_name=t.name.replace("_", " ").capitalize(),
                           keywords=tuple(dict.fromkeys(
                               w for words in t.keywords.values() for w in words)))
            for t in cfg.topics]


def add_open311_routes(
    app: web.Application,
    store: CaseStore,
    *,
    api_keys: set[str],
    services: list[Open311Service],
    jurisdiction_id: str | None = None,
    base: str = "/open311/v2",
    public_channels: frozenset[str] = frozenset({CHANNEL}),
) -> None:
    """Add the GeoReport v2 endpoints to ``app`` (before it starts)."""
    api = _Api(store, api_keys, services, jurisdiction_id, public_channels)

    @web.middleware
    async def errors(request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith(base + "/"):
            return await handler(request)  # type: ignore[no-any-return]
        try:
            return await handler(request)  # type: ignore[no-any-return]
        except Open311Error as e:
            return e.response()
        except CaseStoreUnavailable:
            return Open311Error(503, "the case store is unavailable; try again later").response()
        except CaseStoreError:
            # Not the client's doing (bad input is refused before the store is asked): the
            # spec's error shape, without the store's internals; the log has them.
            log.exception("open311 %s %s: the case store failed", request.method,
                          request.path)
            return Open311Error(503, "the case store could not process this request; try "
                                     "again later").response()
        except web.HTTPNotFound:
            return Open311Error(404, f"no such resource: {request.path}").response()
        except web.HTTPMethodNotAllowed as e:
            response = Open311Error(405, f"{request.method} not allowed on {request.path}"
                                    ).response()
            # RFC 9110: a 405 says which methods the resource has.
            response.headers["Allow"] = ", ".join(sorted(e.allowed_methods))
            return response

    app.middlewares.append(errors)
    app.router.add_get(f"{base}/services.json", api.services_json)
    app.router.add_get(f"{base}/requests.json", api.list_requests)
    app.router.add_post(f"{base}/requests.json", api.post_request)
    app.router.add_get(base + "/requests/{id}.json", api.get_request)
    add_openapi_route(app, base)
