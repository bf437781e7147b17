"""Small typed builders: a fresh tenant per test, with a user of each role and helpers."""

from __future__ import annotations

import itertools
import random
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.accounts import service as accounts_service
from service.accounts.domain import password_hasher
from service.accounts.schemas import UserCreate
from service.cpts import service as cpts_service
from service.cpts.schemas import CptsCreate
from service.db import session_scope
from service.practitioners.domain import luhn_valid

PASSWORD = "correct horse battery staple"
_counter = itertools.count(1)
_hasher = password_hasher(1, 64)


@dataclass
class Clock:
    now: datetime

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def unique_rpps(valid_key: bool = True) -> str:
    body = f"1{random.randrange(10**9):09d}"
    for key in range(10):
        if luhn_valid(body + str(key)) == valid_key:
            return body + str(key)
    raise AssertionError("unreachable")


@dataclass
class Tenant:
    http: httpx.AsyncClient
    cpts_id: uuid.UUID
    timezone: str
    tokens: dict[str, str] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)
    user_ids: dict[str, str] = field(default_factory=dict)
    rpps: dict[str, str] = field(default_factory=dict)  # of the regulator

    def as_role(self, role: str) -> dict[str, str]:
        return bearer(self.tokens[role])

    async def relogin(self) -> None:
        """New tokens at the service's current clock (after a test moved it)."""
        for role, email in self.emails.items():
            self.tokens[role] = await login(self.http, email)

    @property
    def coordinator(self) -> dict[str, str]:
        return self.as_role("coordinator")

    @property
    def handler(self) -> dict[str, str]:
        return self.as_role("handler")

    @property
    def admin(self) -> dict[str, str]:
        return self.as_role("admin")

    async def add_practitioner(self, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "rpps": unique_rpps(),
            "family_name": "Martin",
            "given_name": "Claire",
            "profession": "10",
            "specialty": "SM54",
            "sites": [
                {
                    "name": "Cabinet du Centre",
                    "address": "3 rue de la Paix",
                    "postal_code": "44000",
                    "commune_insee": "44109",
                    "latitude": 47.2184,
                    "longitude": -1.5536,
                    "home_visit_communes": ["44109", "44143"],
                }
            ],
        }
        body.update(overrides)
        response = await self.http.post("/v1/practitioners", json=body, headers=self.coordinator)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    async def add_client(self, practitioner_ids: list[str], **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"name": f"Agenda {next(_counter)}", "practitioner_ids": practitioner_ids}
        body.update(overrides)
        response = await self.http.post("/v1/clients", json=body, headers=self.coordinator)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result


async def login(http: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
    response = await http.post("/v1/auth/token", data={"username": email, "password": password})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def new_tenant(
    http: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    timezone: str = "Europe/Paris",
    population: int = 60_000,
    contract_start: date | None = None,
    roles: tuple[str, ...] = ("handler", "coordinator", "admin", "regulator"),
) -> Tenant:
    """A CPTS created the way the platform admin's CLI does it, with one logged-in user per role."""
    n = next(_counter)
    suffix = uuid.uuid4().hex[:8]
    async with session_scope(sessionmaker) as session:
        cpts = await cpts_service.create(
            session,
            CptsCreate(
                name=f"CPTS test {n}",
                population=population,
                timezone=timezone,
                contract_start_date=contract_start or date(2025, 1, 1),
            ),
            datetime.now().astimezone(),
        )
        emails, user_ids, numbers = {}, {}, {}
        for role in roles:
            email = f"{role}.{suffix}@cpts{n}.test"
            rpps = unique_rpps() if role == "regulator" else None
            data = UserCreate.model_validate(
                {"email": email, "display_name": f"{role} {n}", "role": role, "password": PASSWORD, "rpps": rpps}
            )
            user = await accounts_service.create_user(session, _hasher, cpts.id, data)
            emails[role], user_ids[role] = email, str(user.id)
            if rpps:
                numbers[role] = rpps
    tenant = Tenant(http=http, cpts_id=cpts.id, timezone=timezone, emails=emails, user_ids=user_ids, rpps=numbers)
    for role, email in emails.items():
        tenant.tokens[role] = await login(http, email)
    return tenant


def next_day_at(hour: int, days: int = 2, tz: str = "Europe/Paris") -> datetime:
    """A round local time a few days ahead (inside the publication horizon)."""
    from zoneinfo import ZoneInfo

    local = datetime.now(ZoneInfo(tz)) + timedelta(days=days)
    return local.replace(hour=hour, minute=0, second=0, microsecond=0)


def slot_item(
    external_id: str, practitioner: dict[str, Any], start: datetime, minutes: int = 20, **overrides: Any
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "external_id": external_id,
        "practitioner_id": practitioner["id"],
        "site_id": practitioner["sites"][0]["id"],
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=minutes)).isoformat(),
    }
    item.update(overrides)
    return item


@dataclass
class Agenda:
    """A practice-software client of a tenant, with the practitioners it publishes for."""

    tenant: Tenant
    client_id: str
    api_key: str
    practitioners: list[dict[str, Any]]

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.api_key)

    async def batch(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        response = await self.tenant.http.post("/v1/slots/batch", json={"slots": items}, headers=self.headers)
        assert response.status_code == 200, response.text
        results: list[dict[str, Any]] = response.json()["results"]
        return results

    async def slots(self, **params: Any) -> list[dict[str, Any]]:
        response = await self.tenant.http.get("/v1/slots", params={"limit": 500, **params}, headers=self.headers)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items


async def new_agenda(tenant: Tenant, practitioners: int = 2, **practitioner_overrides: Any) -> Agenda:
    members = [await tenant.add_practitioner(**practitioner_overrides) for _ in range(practitioners)]
    client = await tenant.add_client([m["id"] for m in members])
    return Agenda(tenant, client["id"], client["api_key"], members)


def request_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "channel": "phone",
        "caller": {"relation": "self", "phone": "06 12 34 56 78"},
        "patient": {
            "family_name": "Dupont",
            "given_name": "Jeanne",
            "birth_date": "1980-05-17",
            "sex": "F",
            "phone": "06 12 34 56 78",
            "commune_insee": "44109",
        },
        "motif": "M19.05.00",  # fever: assess, bookable
        "needs": {"profession": "10", "modalities": ["AMB", "VR", "HH"]},
    }
    body.update(overrides)
    return body


async def open_request(tenant: Tenant, **overrides: Any) -> dict[str, Any]:
    response = await tenant.http.post("/v1/requests", json=request_body(**overrides), headers=tenant.handler)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def hold_for_new_request(tenant: Tenant, slot_id: str) -> str:
    """Open a request and hold the slot for it: the booking's id."""
    request = await open_request(tenant)
    held = await tenant.http.post(
        f"/v1/requests/{request['id']}/hold", json={"slot_id": slot_id}, headers=tenant.handler
    )
    assert held.status_code == 201, held.text
    return str(held.json()["booking_id"])


async def publish(agenda: Agenda, items: list[dict[str, Any]]) -> list[str]:
    """Publish slots and answer their ids, in order."""
    results = await agenda.batch(items)
    assert all(r["outcome"] == "created" for r in results), results
    return [r["slot_id"] for r in results]


async def console_sign_in(http: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
    """Sign in to the console as a browser would (login nonce, session cookie); the page's CSRF token."""
    page = await http.get("/console/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)
    assert nonce is not None
    answer = await http.post("/console/login", data={"email": email, "password": password, "nonce": nonce.group(1)})
    assert answer.status_code == 303, answer.text
    queue = await http.get("/console/queue")
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', queue.text)
    assert csrf is not None
    return csrf.group(1)
