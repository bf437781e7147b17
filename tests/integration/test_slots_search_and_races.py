from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.db import session_scope
from service.slots.models import Slot
from tests.builders import Tenant, bearer, new_agenda, next_day_at, slot_item


async def search(client: httpx.AsyncClient, tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/v1/slots/search", params={"limit": 500, **params}, headers=tenant.handler)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_search_finds_free_slots_by_profession_modality_and_commune(
    client: httpx.AsyncClient, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    gps = await new_agenda(tenant, practitioners=1)  # site in 44109, home visits in 44109 and 44143
    nurses = await new_agenda(
        tenant,
        practitioners=1,
        profession="60",
        specialty=None,
        sites=[{"name": "Soins", "commune_insee": "44020", "home_visit_communes": ["44020", "44162"]}],
    )
    gp, nurse = gps.practitioners[0], nurses.practitioners[0]
    start = next_day_at(9)
    gp_results = await gps.batch(
        [
            slot_item("gp-amb", gp, start),
            slot_item("gp-vr", gp, start + timedelta(hours=1), modality="VR"),
            slot_item("gp-hidden", gp, start + timedelta(hours=2), visibility=["PUBLIC"]),
            slot_item("gp-held", gp, start + timedelta(hours=3)),
        ]
    )
    await nurses.batch([slot_item("nurse-hh", nurse, start, modality="HH")])
    async with session_scope(sessionmaker) as session:
        await session.execute(
            update(Slot)
            .where(Slot.id == gp_results[3]["slot_id"])
            .values(status="held", hold_expires_at=datetime.now(UTC) + timedelta(minutes=3))
        )

    everything = await search(client, tenant)
    # Earliest first; the hidden (PUBLIC only) and the held slots are not offered.
    assert len(everything) == 3
    assert {s["modality"] for s in everything[:2]} == {"AMB", "HH"}  # same start
    assert everything[2]["id"] == gp_results[1]["slot_id"]
    by_modality = {s["modality"]: s for s in everything}
    assert by_modality["AMB"]["id"] == gp_results[0]["slot_id"]
    assert by_modality["AMB"]["site"]["commune_insee"] == "44109"
    assert by_modality["AMB"]["practitioner"]["family_name"] == gp["family_name"]
    assert by_modality["HH"]["practitioner"]["id"] == nurse["id"]

    gp_only = await search(client, tenant, profession="10", specialty="SM54")
    assert {s["practitioner"]["id"] for s in gp_only} == {gp["id"]}
    assert [s["modality"] for s in await search(client, tenant, modality="HH")] == ["HH"]
    # 44162: nurse's home visits cover it; the GP's practice is elsewhere, but video works anywhere.
    assert sorted(s["modality"] for s in await search(client, tenant, commune_insee="44162")) == ["HH", "VR"]
    # 44109: the GP's practice, plus video.
    assert sorted(s["modality"] for s in await search(client, tenant, commune_insee="44109")) == ["AMB", "VR"]
    later = await search(client, tenant, start_from=(start + timedelta(minutes=30)).isoformat())
    assert [s["modality"] for s in later] == ["VR"]


async def test_search_is_for_staff_only(client: httpx.AsyncClient, tenant: Tenant) -> None:
    agenda = await new_agenda(tenant, practitioners=1)
    assert (await client.get("/v1/slots/search", headers=bearer(agenda.api_key))).status_code == 403
    bad = await client.get("/v1/slots/search", params={"commune_insee": "123"}, headers=tenant.handler)
    assert bad.status_code == 422


async def test_two_clients_racing_for_one_practitioners_time_store_exactly_one(
    client: httpx.AsyncClient, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Two agenda programs publish overlapping slots for the same practitioner at the same moment,
    on separate connections: the exclusion constraint lets exactly one through, every time."""
    doctor = await tenant.add_practitioner()
    first = await tenant.add_client([doctor["id"]])
    second = await tenant.add_client([doctor["id"]])
    start = next_day_at(6, days=5)
    rounds = 25
    for n in range(rounds):
        at = start + timedelta(minutes=30 * n)
        mine = slot_item(f"a-{n}", doctor, at)
        theirs = slot_item(f"b-{n}", doctor, at + timedelta(minutes=5))
        answers = await asyncio.gather(
            client.post("/v1/slots/batch", json={"slots": [mine]}, headers=bearer(first["api_key"])),
            client.post("/v1/slots/batch", json={"slots": [theirs]}, headers=bearer(second["api_key"])),
        )
        results = [a.json()["results"][0] for a in answers]
        assert sorted(r["outcome"] for r in results) == ["created", "rejected"], results
        assert {(r["problem"] or {}).get("code") for r in results} == {None, "slot_overlap"}
    async with sessionmaker() as session:
        live = await session.scalar(
            select(func.count())
            .select_from(Slot)
            .where(Slot.practitioner_id == doctor["id"], Slot.status != "withdrawn")
        )
    assert live == rounds


async def test_the_same_batch_sent_twice_at_once_creates_each_slot_once(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    agenda = await new_agenda(tenant, practitioners=2)
    start = next_day_at(7, days=4)
    items = [
        slot_item(f"twin-{i}", agenda.practitioners[i % 2], start + timedelta(minutes=20 * (i // 2))) for i in range(30)
    ]
    answers = await asyncio.gather(*(agenda.batch(items) for _ in range(2)))
    outcomes = sorted(r["outcome"] for answer in answers for r in answer)
    assert outcomes == ["created"] * 30 + ["unchanged"] * 30
    assert len(await agenda.slots()) == 30
