from __future__ import annotations

import json
from pathlib import Path

from service.config import Environment, Settings
from service.main import create_app

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


def app_openapi() -> dict[str, object]:
    settings = Settings(
        SNP_ENV=Environment.development, SNP_SECRET_KEY="contract-test", DATABASE_URL="postgresql://unused/unused"
    )
    return create_app(settings).openapi()


def test_committed_openapi_matches_the_app() -> None:
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert committed == app_openapi(), "openapi/openapi.json is stale: run `make openapi` and commit it"


def test_operation_ids_are_explicit_stable_and_unique() -> None:
    ids: list[str] = []
    for path, item in app_openapi()["paths"].items():  # type: ignore[attr-defined]
        for method, operation in item.items():
            op_id = operation["operationId"]
            assert "-" in op_id, f"{method.upper()} {path} has no explicit domain-verb operation id: {op_id}"
            ids.append(op_id)
    assert len(ids) == len(set(ids))


def test_both_auth_schemes_are_documented() -> None:
    schemes = app_openapi()["components"]["securitySchemes"]  # type: ignore[index]
    assert schemes["StaffToken"]["flows"]["password"]["tokenUrl"] == "/v1/auth/token"
    assert schemes["ApiKey"]["scheme"] == "bearer"
