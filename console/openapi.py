"""The OpenAPI 3.0 document of the public HTTP API (Open311 GeoReport v2), served at
``{base}/openapi.json`` so that integrators can generate clients and tests can check the API
against it (schemathesis)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

_ERROR = {"type": "array", "minItems": 1, "items": {
    "type": "object", "required": ["code", "description"], "additionalProperties": False,
    "properties": {"code": {"type": "integer"}, "description": {"type": "string"}}}}
_ERRORS = {str(code): {"description": what, "content": {"application/json": {"schema": _ERROR}}}
           for code, what in ((400, "bad or missing fields"), (403, "missing or unknown api_key"),
                              (404, "unknown service, request or jurisdiction"),
                              (503, "the case store is unavailable"))}
_NULLABLE_STR = {"type": "string", "nullable": True}
_REQUEST = {"type": "object", "required": ["service_request_id", "status"], "properties": {
    "service_request_id": {"type": "string"},
    "status": {"type": "string", "enum": ["open", "closed"]},
    "status_notes": _NULLABLE_STR, "service_name": _NULLABLE_STR, "service_code": _NULLABLE_STR,
    "description": _NULLABLE_STR, "agency_responsible": _NULLABLE_STR,
    "service_notice": _NULLABLE_STR, "requested_datetime": _NULLABLE_STR,
    "updated_datetime": _NULLABLE_STR, "expected_datetime": _NULLABLE_STR,
    "address": _NULLABLE_STR, "address_id": _NULLABLE_STR, "zipcode": _NULLABLE_STR,
    "lat": {"type": "number", "nullable": True}, "long": {"type": "number", "nullable": True},
    "media_url": _NULLABLE_STR}}
_JURISDICTION = {"name": "jurisdiction_id", "in": "query", "required": False,
                 "schema": {"type": "string"}}


def _ok(schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": "OK", "content": {"application/json": {"schema": schema}}}


def open311_document(base: str = "/open311/v2") -> dict[str, Any]:
    post_fields = {
        "api_key": {"type": "string"}, "jurisdiction_id": {"type": "string"},
        "service_code": {"type": "string"}, "lat": {"type": "number"},
        "long": {"type": "number"}, "address_string": {"type": "string"},
        "address_id": {"type": "string"}, "description": {"type": "string", "maxLength": 4000},
        "email": {"type": "string"}, "first_name": {"type": "string"},
        "last_name": {"type": "string"}, "phone": {"type": "string"},
        "media_url": {"type": "string"}}
    form = {"type": "object", "required": ["api_key", "service_code"],
            "properties": post_fields}
    return {
        "openapi": "3.0.3",
        "info": {"title": "hotline Open311 GeoReport v2", "version": "2"},
        "paths": {
            f"{base}/services.json": {"get": {
                "summary": "The service list", "parameters": [_JURISDICTION],
                "responses": {"200": _ok({"type": "array", "items": {
                    "type": "object", "required": ["service_code", "service_name"],
                    "properties": {
                        "service_code": {"type": "string"}, "service_name": {"type": "string"},
                        "description": _NULLABLE_STR, "metadata": {"type": "boolean"},
                        "type": {"type": "string"}, "keywords": _NULLABLE_STR,
                        "group": _NULLABLE_STR}}}), **_ERRORS}}},
            f"{base}/requests.json": {
                "get": {"summary": "Requests, newest first", "parameters": [
                    _JURISDICTION,
                    *({"name": n, "in": "query", "required": False,
                       "schema": {"type": "string"}} for n in (
                        "service_request_id", "service_code")),
                    *({"name": n, "in": "query", "required": False,
                       # Empty is taken as not given.
                       "schema": {"type": "string",
                                  "anyOf": [{"format": "date-time"}, {"maxLength": 0}]}}
                      for n in ("start_date", "end_date")),
                    {"name": "status", "in": "query", "required": False,
                     "schema": {"type": "string",
                                "pattern": "^((open|closed)(,(open|closed))*)?$"}}],
                    "responses": {"200": _ok({"type": "array", "items": _REQUEST}), **_ERRORS}},
                "post": {"summary": "A new request", "requestBody": {"required": True, "content": {
                    "application/x-www-form-urlencoded": {"schema": form},
                    "application/json": {"schema": form}}},
                    "responses": {"200": _ok({"type": "array", "items": {
                        "type": "object", "required": ["service_request_id"], "properties": {
                            "service_request_id": {"type": "string"},
                            "service_notice": _NULLABLE_STR,
                            "account_id": _NULLABLE_STR}}}), **_ERRORS}}},
            f"{base}/requests/{{id}}.json": {"get": {
                "summary": "One request (an array of one)",
                "parameters": [{"name": "id", "in": "path", "required": True,
                                "schema": {"type": "string"}}, _JURISDICTION],
                "responses": {"200": _ok({"type": "array", "items": _REQUEST}), **_ERRORS}}},
        },
    }


def add_openapi_route(app: web.Application, base: str = "/open311/v2") -> None:
    document = open311_document(base)

    async def serve(request: web.Request) -> web.Response:
        return web.json_response(document)
    app.router.add_get(f"{base}/openapi.json", serve)
