from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.audit.models import AuditEvent
from service.orientation.models import CareRequest
from tests.builders import (
    PASSWORD,
    Clock,
    Tenant,
    new_agenda,
    next_day_at,
    open_request,
    publish,
    request_body,
    slot_item,
    unique_rpps,
)


async def count_requests(sessionmaker: async_sessionmaker[AsyncSession], tenant: Tenant) -> int:
    async with sessionmaker() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(CareRequest).where(CareRequest.cpts_id == tenant.cpts_id)
            )
            or 0
        )


async def test_a_request_gets_its_24_hour_deadline(client: httpx.AsyncClient, tenant: Tenant, clock: Clock) -> None:
    clock.now = datetime(2026, 11, 20, 9, 15, tzinfo=UTC)
    created = await open_request(tenant)
    assert created["status"] == "open"
    assert created["received_at"] == "2026-11-20T10:15:00+01:00"  # Paris offset
    assert created["deadline_at"] == "2026-11-21T10:15:00+01:00"
    assert created["motif_classification"] == "assess"
    assert created["needs"] == {"profession": "10", "specialty": "SM54", "modalities": ["AMB", "HH", "VR"]}
    assert "patient" not in created  # answers to a POST carry no identity

    backdated = await open_request(tenant, received_at="2026-11-20T07:15:00+01:00")
    assert backdated["deadline_at"] == "2026-11-21T07:15:00+01:00"


async def test_the_deadline_across_the_autumn_clock_change_is_elapsed_time(
    client: httpx.AsyncClient, tenant: Tenant, clock: Clock
) -> None:
    clock.now = datetime(2026, 10, 24, 8, 30, tzinfo=UTC)  # 10:30 in Paris, summer time
    created = await open_request(tenant)
    assert created["received_at"] == "2026-10-24T10:30:00+02:00"
    assert created["deadline_at"] == "2026-10-25T09:30:00+01:00"  # 24 h later, 23 clock hours


async def test_a_wider_response_window_of_the_cpts(client: httpx.AsyncClient, tenant: Tenant, clock: Clock) -> None:
    clock.now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    await client.patch("/v1/cpts/current", json={"response_window_hours": 48}, headers=tenant.coordinator)
    created = await open_request(tenant)
    assert created["deadline_at"] == "2026-11-22T10:00:00+01:00"


async def test_invalid_requests_are_422_and_store_nothing(
    client: httpx.AsyncClient, tenant: Tenant, clock: Clock, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    clock.now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    cases: list[tuple[dict[str, Any], list[str | int]]] = [
        ({"received_at": "2026-11-20T11:00:00+01:00"}, ["body", "received_at"]),  # future
        ({"received_at": "2026-11-19T09:59:00+01:00"}, ["body", "received_at"]),  # > 24 h ago
        ({"received_at": "2026-11-20T09:00:00"}, ["body", "received_at"]),  # naive
        ({"motif": "M42.00.00"}, ["body", "motif"]),
        ({"red_flags": ["bad_vibes"]}, ["body", "red_flags"]),
        ({"channel": "fax"}, ["body", "channel"]),
        ({"patient": {"identity_status": "PROV", "ins": "269054958815780"}}, ["body", "patient"]),
        ({"patient": {"identity_status": "QUAL", "ins": "269054958815781"}}, ["body", "patient", "ins"]),
        ({"patient": {"commune_insee": "4410"}}, ["body", "patient", "commune_insee"]),
        ({"regulating_physician": "123"}, ["body", "regulating_physician"]),
        ({"needs": {"modalities": ["XX"]}}, ["body", "needs", "modalities", 0]),
    ]
    for overrides, loc in cases:
        response = await client.post("/v1/requests", json=request_body(**overrides), headers=tenant.handler)
        assert response.status_code == 422, overrides
        locations = [e["loc"] for e in response.json()["errors"]]
        assert any(found[: len(loc)] == loc for found in locations), (overrides, locations)
    assert await count_requests(sessionmaker, tenant) == 0


async def test_a_qualified_identity_may_carry_its_ins(client: httpx.AsyncClient, tenant: Tenant) -> None:
    patient = {**request_body()["patient"], "identity_status": "QUAL", "ins": "269054958815780"}
    created = await open_request(tenant, patient=patient)
    detail = (await client.get(f"/v1/requests/{created['id']}", headers=tenant.handler)).json()
    assert detail["patient"]["ins"] == "269054958815780"
    assert detail["patient"]["age_band"] == "16-64"


async def test_only_handlers_open_requests_and_software_cannot_read_them(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await open_request(tenant)
    agenda = await new_agenda(tenant, practitioners=1)
    assert (await client.post("/v1/requests", json=request_body(), headers=tenant.coordinator)).status_code == 403
    assert (await client.post("/v1/requests", json=request_body(), headers=agenda.headers)).status_code == 403
    assert (await client.get(f"/v1/requests/{created['id']}", headers=agenda.headers)).status_code == 403
    assert (await client.get("/v1/requests", headers=agenda.headers)).status_code == 403
    assert (await client.get(f"/v1/requests/{created['id']}", headers=tenant.coordinator)).status_code == 200


async def test_another_cpts_handler_gets_404(client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant) -> None:
    created = await open_request(tenant)
    path = f"/v1/requests/{created['id']}"
    assert (await client.get(path, headers=other_tenant.handler)).status_code == 404
    assert (await client.get(f"{path}/suggestions", headers=other_tenant.handler)).status_code == 404
    orient = await client.post(f"{path}/orientations", json={"outcome": "advice"}, headers=other_tenant.handler)
    assert orient.status_code == 404
    hold = await client.post(f"{path}/hold", json={"slot_id": created["id"]}, headers=other_tenant.handler)
    assert hold.status_code == 404
    assert (await client.get(path, headers=tenant.handler)).json()["status"] == "open"
    queue = (await client.get("/v1/requests", headers=other_tenant.handler)).json()["items"]
    assert created["id"] not in [r["id"] for r in queue]


async def test_red_flags_force_a_transfer_unless_a_regulating_physician_overrides(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    agenda = await new_agenda(tenant, practitioners=1)
    [slot_id] = await publish(agenda, [slot_item("s1", agenda.practitioners[0], next_day_at(9, days=1))])
    chest_pain = await open_request(tenant, motif="M17.03.00")
    assert (chest_pain["status"], chest_pain["motif_classification"]) == ("transfer_required", "transfer_15")
    ticked = await open_request(tenant, motif="M19.04.00", red_flags=["stroke_signs"])
    assert ticked["status"] == "transfer_required"

    for path in ("hold", "book"):
        refused = await client.post(
            f"/v1/requests/{ticked['id']}/{path}", json={"slot_id": slot_id}, headers=tenant.handler
        )
        assert refused.status_code == 422
        assert refused.json()["code"] == "red_flag_transfer_required"
    advice = await client.post(
        f"/v1/requests/{ticked['id']}/orientations", json={"outcome": "advice"}, headers=tenant.handler
    )
    assert advice.status_code == 422
    assert advice.json()["code"] == "red_flag_transfer_required"

    # Suggestions are not offered either.
    suggested = await client.get(f"/v1/requests/{ticked['id']}/suggestions", headers=tenant.handler)
    assert (suggested.status_code, suggested.json()["code"]) == (422, "red_flag_transfer_required")

    # The 15 takes the chest pain; a regulating physician sends it back to unscheduled care.
    transferred = await client.post(
        f"/v1/requests/{chest_pain['id']}/orientations", json={"outcome": "transfer_15"}, headers=tenant.handler
    )
    assert transferred.status_code == 201
    assert transferred.json()["request"]["status"] == "closed"
    override = f"/v1/requests/{chest_pain['id']}/override"
    # A handler cannot lift a red flag by typing an RPPS: it is a medical decision.
    refused = await client.post(override, json={"regulating_physician": "12345678901"}, headers=tenant.handler)
    assert (refused.status_code, refused.json()["code"]) == (403, "regulator_required")
    sent_back = await client.post(
        override, json={"note": "ECG normal, voir MG sous 24 h"}, headers=tenant.as_role("regulator")
    )
    assert sent_back.status_code == 201
    assert sent_back.json()["request"]["status"] == "open"
    assert sent_back.json()["event"]["regulating_physician"] == tenant.rpps["regulator"]
    assert sent_back.json()["event"]["actor_id"] == tenant.user_ids["regulator"]
    booked = await client.post(
        f"/v1/requests/{chest_pain['id']}/book", json={"slot_id": slot_id}, headers=tenant.handler
    )
    assert booked.status_code == 201
    events = (await client.get(f"/v1/requests/{chest_pain['id']}", headers=tenant.handler)).json()["events"]
    assert [e["kind"] for e in events] == ["transfer_15", "red_flag_override", "booked"]

    # A regulator decides under their own RPPS only.
    other_rpps = await client.post(
        f"/v1/requests/{ticked['id']}/override",
        json={"regulating_physician": unique_rpps()},
        headers=tenant.as_role("regulator"),
    )
    assert (other_rpps.status_code, other_rpps.json()["code"]) == (422, "regulating_physician_mismatch")
    open_one = await open_request(tenant)
    nothing_to_lift = await client.post(
        f"/v1/requests/{open_one['id']}/override", json={}, headers=tenant.as_role("regulator")
    )
    assert nothing_to_lift.status_code == 409


async def test_a_handler_records_the_decision_of_the_sas_regulator_named_on_the_request(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    sas_regulator = unique_rpps()
    via_sas = await open_request(
        tenant, channel="sas", via_sas=True, regulating_physician=sas_regulator, red_flags=["chest_pain"]
    )
    path = f"/v1/requests/{via_sas['id']}/override"
    wrong = await client.post(path, json={"regulating_physician": unique_rpps()}, headers=tenant.handler)
    assert (wrong.status_code, wrong.json()["code"]) == (403, "regulator_required")
    unnamed = await client.post(path, json={}, headers=tenant.handler)
    assert unnamed.status_code == 403
    lifted = await client.post(path, json={"regulating_physician": sas_regulator}, headers=tenant.handler)
    assert lifted.status_code == 201
    assert lifted.json()["event"]["regulating_physician"] == sas_regulator
    # Not through the SAS: the same handler may not.
    local = await open_request(tenant, regulating_physician=sas_regulator, red_flags=["chest_pain"])
    refused = await client.post(
        f"/v1/requests/{local['id']}/override", json={"regulating_physician": sas_regulator}, headers=tenant.handler
    )
    assert refused.status_code == 403


async def test_a_regulator_account_carries_a_valid_rpps(client: httpx.AsyncClient, tenant: Tenant) -> None:
    body = {"email": "dr.regul@cpts.test", "display_name": "Dr Régul", "role": "regulator", "password": PASSWORD}
    for rpps in (None, "12345678901"):  # missing; a check digit that fails
        refused = await client.post("/v1/users", json={**body, "rpps": rpps}, headers=tenant.coordinator)
        assert refused.status_code == 422, refused.text
    created = await client.post("/v1/users", json={**body, "rpps": unique_rpps()}, headers=tenant.coordinator)
    assert (created.status_code, created.json()["role"]) == (201, "regulator")


async def test_a_cpts_may_reclassify_a_motif(client: httpx.AsyncClient, tenant: Tenant) -> None:
    patch = await client.patch(
        "/v1/cpts/current", json={"motif_overrides": {"M16.03.04": "snp"}}, headers=tenant.coordinator
    )
    assert patch.status_code == 200
    assert (await open_request(tenant, motif="M16.03.04"))["motif_classification"] == "snp"
    motifs = {m["code"]: m for m in (await client.get("/v1/motifs", headers=tenant.handler)).json()}
    assert (motifs["M16.03.04"]["classification"], motifs["M16.03.04"]["overridden"]) == ("snp", True)
    assert (motifs["M17.03.00"]["classification"], motifs["M17.03.00"]["overridden"]) == ("transfer_15", False)
    bad = await client.patch(
        "/v1/cpts/current", json={"motif_overrides": {"M99.99.99": "snp"}}, headers=tenant.coordinator
    )
    assert bad.status_code == 422
    flags = (await client.get("/v1/red-flags", headers=tenant.handler)).json()
    assert {"chest_pain", "stroke_signs"} <= {f["code"] for f in flags}


async def test_orientation_closes_and_corrections_are_new_events(client: httpx.AsyncClient, tenant: Tenant) -> None:
    created = await open_request(tenant)
    path = f"/v1/requests/{created['id']}/orientations"
    first = await client.post(path, json={"outcome": "advice", "note": "conseils donnés"}, headers=tenant.handler)
    assert first.status_code == 201
    assert first.json()["request"]["status"] == "closed"
    correction = await client.post(path, json={"outcome": "pharmacy"}, headers=tenant.handler)
    assert correction.status_code == 201
    events = (await client.get(f"/v1/requests/{created['id']}", headers=tenant.handler)).json()["events"]
    assert [(e["kind"], e["note"]) for e in events] == [("advice", "conseils donnés"), ("pharmacy", None)]
    unknown = await client.post(path, json={"outcome": "booked"}, headers=tenant.handler)
    assert unknown.status_code == 422


async def test_the_queue_is_ordered_by_deadline_and_filtered(
    client: httpx.AsyncClient, tenant: Tenant, clock: Clock
) -> None:
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    clock.now = now
    late = await open_request(tenant, received_at=(now - timedelta(hours=1)).isoformat())
    urgent = await open_request(tenant, received_at=(now - timedelta(hours=20)).isoformat())
    flagged = await open_request(tenant, received_at=(now - timedelta(hours=10)).isoformat(), red_flags=["seizure"])
    closed = await open_request(tenant)
    await client.post(
        f"/v1/requests/{closed['id']}/orientations", json={"outcome": "duplicate"}, headers=tenant.handler
    )
    queue = (await client.get("/v1/requests", headers=tenant.handler)).json()["items"]
    # Red flags first, whatever their deadline, then the most urgent deadline.
    assert [r["id"] for r in queue] == [flagged["id"], urgent["id"], late["id"]]
    assert queue[0]["patient"]["family_name"] == "Dupont"
    only_closed = (await client.get("/v1/requests", params={"status": "closed"}, headers=tenant.handler)).json()
    assert [r["id"] for r in only_closed["items"]] == [closed["id"]]
    # A status asked twice is one status: each request once.
    twice = {"status": ["open", "open", "transfer_required"]}
    asked_twice = (await client.get("/v1/requests", params=twice, headers=tenant.handler)).json()["items"]
    assert [r["id"] for r in asked_twice] == [flagged["id"], urgent["id"], late["id"]]
    soon = await client.get(
        "/v1/requests", params={"due_before": (now + timedelta(hours=15)).isoformat()}, headers=tenant.handler
    )
    assert [r["id"] for r in soon.json()["items"]] == [flagged["id"], urgent["id"]]
    for size in (1, 2):  # the cursor carries the rank: pages walk the same order
        seen, cursor = [], None
        while True:
            params: dict[str, str | int] = {"limit": size, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/v1/requests", params=params, headers=tenant.handler)).json()
            seen += [r["id"] for r in page["items"]]
            if (cursor := page["next_cursor"]) is None:
                break
        assert seen == [flagged["id"], urgent["id"], late["id"]]


async def test_every_read_and_change_of_patient_data_is_audited(
    client: httpx.AsyncClient, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    created = await open_request(tenant)
    await client.get(f"/v1/requests/{created['id']}", headers={**tenant.coordinator, "X-Request-ID": "audit-read-1"})
    await client.get("/v1/requests", headers=tenant.handler)
    await client.post(f"/v1/requests/{created['id']}/orientations", json={"outcome": "own_gp"}, headers=tenant.handler)
    async with sessionmaker() as session:
        rows = list(
            await session.execute(
                select(AuditEvent.action, AuditEvent.actor_kind, AuditEvent.http_request_id)
                .where(AuditEvent.cpts_id == tenant.cpts_id, AuditEvent.object_id == created["id"])
                .order_by(AuditEvent.id)
            )
        )
    assert [r[0] for r in rows] == ["request.create", "request.read", "request.list", "request.orient"]
    assert {r[1] for r in rows} == {"user"}
    assert rows[1][2] == "audit-read-1"
