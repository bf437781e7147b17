"""The OpenAPI document: every operation documents its errors as RFC 9457 problems."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from service.problems import PROBLEM_MEDIA_TYPE

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details, with a stable machine `code`.",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "Stable machine-readable error code"},
        "errors": {
            "type": "array",
            "description": "For validation errors: one entry per invalid field",
            "items": {
                "type": "object",
                "required": ["loc", "msg", "type"],
                "properties": {
                    "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_COMMON = {
    "401": "Missing or invalid credentials",
    "403": "The caller's role may not do this",
    "404": "No such object in the caller's CPTS",
    "422": "Invalid input (problem with `errors`)",
}


def _problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_REF}}}


def install_openapi(app: FastAPI, security_schemes: dict[str, Any]) -> None:
    """`security_schemes`: the schemes the operations' `security` names (declared by their routes)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes, tags=app.openapi_tags
        )
        schema.setdefault("components", {})["securitySchemes"] = security_schemes
        components = schema["components"].setdefault("schemas", {})
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        components["Problem"] = PROBLEM_SCHEMA
        for path, item in schema.get("paths", {}).items():
            for operation in item.values():
                responses = operation.setdefault("responses", {})
                secured = bool(operation.get("security"))
                for code, description in _COMMON.items():
                    if code in ("401", "403") and not secured:
                        continue
                    if code == "404" and "{" not in path and not secured:
                        continue
                    existing = responses.get(code, {})
                    responses[code] = _problem_response(existing.get("description") or description)
                responses.setdefault("default", _problem_response("Any other error"))
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
