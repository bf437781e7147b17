"""Accounts and sessions: throttled logins, strong passwords, tokens revoked at once, e-mails per
CPTS, a second factor (TOTP) a CPTS can require."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pyotp
import pytest
from fastapi import FastAPI

from tests.builders import PASSWORD, Clock, Tenant, bearer, login

STRONG = "plume ardoise violon citadelle"


async def attempt(client: httpx.AsyncClient, email: str, password: str, **extra: str) -> httpx.Response:
    return await client.post("/v1/auth/token", data={"username": email, "password": password, **extra})


async def test_five_wrong_passwords_lock_the_account_until_a_coordinator_lifts_it(
    client: httpx.AsyncClient, tenant: Tenant, clock: Clock
) -> None:
    email = tenant.emails["handler"]
    for _ in range(5):
        assert (await attempt(client, email, "wrong password")).status_code == 401
    locked = await attempt(client, email, PASSWORD)  # the right password does not get through a lock
    assert (locked.status_code, locked.json()["code"]) == (429, "login_locked")
    assert 800 <= int(locked.headers["retry-after"]) <= 900
    user_id = tenant.user_ids["handler"]
    shown = (await client.get(f"/v1/users/{user_id}", headers=tenant.coordinator)).json()
    assert shown["locked_until"] is not None
    unlocked = await client.post(f"/v1/users/{user_id}/unlock", headers=tenant.coordinator)
    assert (unlocked.status_code, unlocked.json()["locked_until"]) == (200, None)
    assert (await attempt(client, email, PASSWORD)).status_code == 200


async def test_the_lock_lifts_by_itself_and_a_success_clears_the_count(
    client: httpx.AsyncClient, tenant: Tenant, clock: Clock
) -> None:
    email = tenant.emails["coordinator"]
    for _ in range(5):
        await attempt(client, email, "wrong password")
    assert (await attempt(client, email, PASSWORD)).status_code == 429
    clock.advance(minutes=16)
    assert (await attempt(client, email, PASSWORD)).status_code == 200
    for _ in range(4):  # counted from zero again
        await attempt(client, email, "wrong password")
    assert (await attempt(client, email, PASSWORD)).status_code == 200


@pytest.fixture
def address_limit(app: FastAPI) -> Iterator[int]:
    """The default per-address limit, for this test (the session raises it: its clients share an address)."""
    kept = app.state.settings
    app.state.settings = kept.model_copy(update={"login_max_failures_per_address": 50})
    yield 50
    app.state.settings = kept


async def test_one_address_trying_many_accounts_is_throttled(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, address_limit: int
) -> None:
    transport = httpx.ASGITransport(app=app, client=(f"203.0.113.{uuid.uuid4().int % 250}", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://snp.test") as elsewhere:
        tries = [(await attempt(elsewhere, f"nobody{i}@nowhere.test", "guess guess")).status_code for i in range(55)]
        assert tries[:address_limit] == [401] * address_limit
        assert set(tries[address_limit:]) == {429}
        # Even a real account, from that address.
        assert (await attempt(elsewhere, tenant.emails["handler"], PASSWORD)).status_code == 429
    # From elsewhere, the account still opens.
    assert (await attempt(client, tenant.emails["handler"], PASSWORD)).status_code == 200


@pytest.mark.parametrize(
    ("password", "why"),
    [
        (" " * 12, "spaces"),
        ("aaaaaaaaaaaa", "guess"),
        ("password1234", "guess"),
        ("new.person@cpts.test", "e-mail"),
    ],
)
async def test_weak_passwords_are_refused_with_a_reason(
    client: httpx.AsyncClient, tenant: Tenant, password: str, why: str
) -> None:
    body = {"email": "new.person@cpts.test", "display_name": "New Person", "role": "handler", "password": password}
    answer = await client.post("/v1/users", json=body, headers=tenant.coordinator)
    assert (answer.status_code, answer.json()["code"]) == (422, "weak_password")
    assert why in answer.json()["detail"]
    assert answer.json()["errors"][0]["loc"] == ["body", "password"]
    patched = await client.patch(
        f"/v1/users/{tenant.user_ids['handler']}", json={"password": "password1234"}, headers=tenant.coordinator
    )
    assert patched.status_code == 422


@pytest.mark.parametrize(
    "change",
    [{"password": STRONG}, {"active": False}, {"role": "coordinator"}],
    ids=["password", "deactivation", "role"],
)
async def test_a_token_loses_its_power_at_once_when_the_account_changes(
    client: httpx.AsyncClient, tenant: Tenant, change: dict[str, Any]
) -> None:
    old = tenant.handler
    assert (await client.get("/v1/requests", headers=old)).status_code == 200
    patched = await client.patch(f"/v1/users/{tenant.user_ids['handler']}", json=change, headers=tenant.coordinator)
    assert patched.status_code == 200
    refused = await client.get("/v1/requests", headers=old)
    assert (refused.status_code, refused.json()["code"]) == (401, "invalid_credentials")
    # A change that touches no credential keeps tokens valid.
    kept = tenant.as_role("admin")
    await client.patch(f"/v1/users/{tenant.user_ids['admin']}", json={"display_name": "Renamed"}, headers=kept)
    assert (await client.get("/v1/cpts/current", headers=kept)).status_code == 200


async def test_one_email_in_two_cpts_signs_in_to_the_one_its_password_opens(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    email = "shared.person@cpts.test"
    for owner, password in ((tenant, STRONG), (other_tenant, "autre phrase tout a fait differente")):
        body = {"email": email, "display_name": "Shared", "role": "handler", "password": password}
        assert (await client.post("/v1/users", json=body, headers=owner.coordinator)).status_code == 201
    token = await login(client, email, STRONG)
    current = (await client.get("/v1/cpts/current", headers=bearer(token))).json()
    assert current["id"] == str(tenant.cpts_id)
    # The same password in both: the caller chooses its CPTS.
    body = {"password": STRONG}
    shared = (await client.get("/v1/users", headers=other_tenant.coordinator)).json()["items"]
    other_id = next(u["id"] for u in shared if u["email"] == email)
    await client.patch(f"/v1/users/{other_id}", json=body, headers=other_tenant.coordinator)
    ambiguous = await attempt(client, email, STRONG)
    assert (ambiguous.status_code, ambiguous.json()["code"]) == (401, "cpts_required")
    chosen = await attempt(client, email, STRONG, scope=f"cpts:{other_tenant.cpts_id}")
    assert chosen.status_code == 200


async def enrol(client: httpx.AsyncClient, headers: dict[str, str], clock: Clock) -> tuple[str, list[str]]:
    started = await client.post("/v1/auth/mfa/enroll", headers=headers)
    assert started.status_code == 200, started.text
    secret = started.json()["secret"]
    assert started.json()["otpauth_uri"].startswith("otpauth://totp/")
    wrong = await client.post("/v1/auth/mfa/activate", json={"code": "000000"}, headers=headers)
    assert wrong.status_code == 422
    code = pyotp.TOTP(secret).at(clock.now)
    activated = await client.post("/v1/auth/mfa/activate", json={"code": code}, headers=headers)
    assert activated.status_code == 200, activated.text
    codes: list[str] = activated.json()["recovery_codes"]
    assert len(codes) == 10
    return secret, codes


async def test_a_second_factor_is_asked_once_enrolled_and_recovery_codes_work_once(
    client: httpx.AsyncClient, tenant: Tenant, clock: Clock
) -> None:
    email = tenant.emails["coordinator"]
    secret, codes = await enrol(client, tenant.coordinator, clock)
    assert (await client.get("/v1/cpts/current", headers=tenant.coordinator)).status_code == 401  # signed in again
    missing = await attempt(client, email, PASSWORD)
    assert (missing.status_code, missing.json()["code"]) == (401, "otp_required")
    wrong = await attempt(client, email, PASSWORD, otp="123456")
    assert (wrong.status_code, wrong.json()["code"]) == (401, "invalid_otp")
    good = await attempt(client, email, PASSWORD, otp=pyotp.TOTP(secret).at(clock.now))
    assert good.status_code == 200
    clock.advance(seconds=30)  # the next code, a step later
    assert (await attempt(client, email, PASSWORD, otp=pyotp.TOTP(secret).at(clock.now))).status_code == 200
    assert (await attempt(client, email, PASSWORD, otp=codes[0])).status_code == 200
    assert (await attempt(client, email, PASSWORD, otp=codes[0])).status_code == 401  # used up
    shown = (await client.get(f"/v1/users/{tenant.user_ids['coordinator']}", headers=tenant.admin)).json()
    assert shown["mfa_enabled"] is True
    reset = await client.post(f"/v1/users/{tenant.user_ids['coordinator']}/reset-mfa", headers=tenant.admin)
    assert (reset.status_code, reset.json()["mfa_enabled"]) == (200, False)
    assert (await attempt(client, email, PASSWORD)).status_code == 200


async def test_a_cpts_that_requires_a_second_factor_lets_staff_in_only_to_enrol(
    client: httpx.AsyncClient, tenant: Tenant, clock: Clock
) -> None:
    required = await client.patch("/v1/cpts/current", json={"mfa_required": True}, headers=tenant.coordinator)
    assert (required.status_code, required.json()["mfa_required"]) == (200, True)
    answer = await attempt(client, tenant.emails["handler"], PASSWORD)
    assert answer.json()["mfa_enrollment_required"] is True
    limited = bearer(answer.json()["access_token"])
    refused = await client.get("/v1/requests", headers=limited)
    assert (refused.status_code, refused.json()["code"]) == (403, "mfa_enrollment_required")
    secret, _ = await enrol(client, limited, clock)
    full = await attempt(client, tenant.emails["handler"], PASSWORD, otp=pyotp.TOTP(secret).at(clock.now))
    assert full.json()["mfa_enrollment_required"] is False
    assert (await client.get("/v1/requests", headers=bearer(full.json()["access_token"]))).status_code == 200
