from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.db import session_scope
from service.slots.models import Slot
from tests.builders import Agenda, Tenant, new_agenda, next_day_at, slot_item


@pytest.fixture
async def agenda(tenant: Tenant) -> Agenda:
    return await new_agenda(tenant)


async def set_status(sessionmaker: async_sessionmaker[AsyncSession], slot_id: str, status: str, **values: Any) -> None:
    """Put a slot in a state the booking flow would (the flow itself is tested elsewhere)."""
    async with session_scope(sessionmaker) as session:
        await session.execute(update(Slot).where(Slot.id == slot_id).values(status=status, **values))


def outcomes(results: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [(r["outcome"], (r["problem"] or {}).get("code")) for r in results]


async def test_put_creates_then_leaves_unchanged_then_updates(client: httpx.AsyncClient, agenda: Agenda) -> None:
    doctor = agenda.practitioners[0]
    start = next_day_at(9)
    body = {k: v for k, v in slot_item("rdv-1", doctor, start).items() if k != "external_id"}
    created = await client.put("/v1/slots/rdv-1", json=body, headers=agenda.headers)
    assert created.status_code == 201, created.text
    slot = created.json()
    assert (slot["outcome"], slot["version"], slot["status"]) == ("created", 1, "free")
    assert slot["visibility"] == ["CPTS", "SNP"]
    assert slot["modality"] == "AMB"
    assert slot["specialty"] == "SM54"  # the practitioner's, by default
    assert slot["start"].endswith(("+01:00", "+02:00"))

    again = await client.put("/v1/slots/rdv-1", json=body, headers=agenda.headers)
    assert again.status_code == 200
    assert (again.json()["outcome"], again.json()["version"]) == ("unchanged", 1)
    assert again.json()["updated_at"] == slot["updated_at"]

    moved = {
        **body,
        "start": (start + timedelta(hours=1)).isoformat(),
        "end": (start + timedelta(hours=1, minutes=20)).isoformat(),
    }
    updated = await client.put("/v1/slots/rdv-1", json=moved, headers=agenda.headers)
    assert updated.status_code == 200
    assert (updated.json()["outcome"], updated.json()["version"]) == ("updated", 2)
    assert updated.json()["published_at"] == slot["published_at"]
    fetched = await client.get("/v1/slots/rdv-1", headers=agenda.headers)
    assert fetched.json()["start"] == updated.json()["start"]


async def test_a_repeated_batch_is_all_unchanged_and_writes_nothing(agenda: Agenda) -> None:
    doctor, nurse = agenda.practitioners
    start = next_day_at(8)
    items = [slot_item(f"b-{i}", [doctor, nurse][i % 2], start + timedelta(minutes=30 * (i // 2))) for i in range(40)]
    first = await agenda.batch(items)
    assert {r["outcome"] for r in first} == {"created"}
    before = {s["id"]: (s["version"], s["updated_at"]) for s in await agenda.slots()}
    second = await agenda.batch(items)
    assert {r["outcome"] for r in second} == {"unchanged"}
    assert [r["slot_id"] for r in second] == [r["slot_id"] for r in first]
    after = {s["id"]: (s["version"], s["updated_at"]) for s in await agenda.slots()}
    assert after == before


async def test_a_mixed_batch_gets_exactly_the_expected_outcomes_and_stores_only_the_good_ones(
    client: httpx.AsyncClient, agenda: Agenda, other_tenant: Tenant
) -> None:
    doctor, nurse = agenda.practitioners
    outsider = await agenda.tenant.add_practitioner()  # a member this client does not publish for
    foreigner = await other_tenant.add_practitioner()  # another CPTS's member
    start = next_day_at(10)
    await agenda.batch([slot_item("existing", doctor, start)])
    naive = slot_item("naive", nurse, start)
    naive["start"] = start.replace(tzinfo=None).isoformat()
    items = [
        slot_item("good-1", nurse, start),
        slot_item("overlap", doctor, start + timedelta(minutes=10)),
        slot_item("past", nurse, start - timedelta(days=3)),
        slot_item("outsider", outsider, start),
        slot_item("foreigner", foreigner, start),
        naive,
        slot_item("good-2", doctor, start + timedelta(minutes=20)),  # touches "existing": allowed
        slot_item("backwards", nurse, start + timedelta(hours=2), minutes=-10),
        slot_item("bad-modality", nurse, start + timedelta(hours=3), modality="XX"),
        slot_item("too-long", nurse, start + timedelta(hours=4), minutes=13 * 60),
        slot_item("too-far", nurse, start + timedelta(days=61)),
        slot_item("good-1", nurse, start + timedelta(hours=5)),  # same external id twice
    ]
    results = await agenda.batch(items)
    assert outcomes(results) == [
        ("created", None),
        ("rejected", "slot_overlap"),
        ("rejected", "slot_in_past"),
        ("rejected", "practitioner_not_found"),
        ("rejected", "practitioner_not_found"),
        ("rejected", "validation_error"),
        ("created", None),
        ("rejected", "invalid_time_range"),
        ("rejected", "validation_error"),
        ("rejected", "invalid_duration"),
        ("rejected", "beyond_horizon"),
        ("rejected", "duplicate_external_id"),
    ]
    naive_problem = results[5]["problem"]
    assert ["start"] in [e["loc"] for e in naive_problem["errors"]]
    assert naive_problem["status"] == 422
    assert results[1]["problem"]["status"] == 409
    stored = sorted(s["external_id"] for s in await agenda.slots())
    assert stored == ["existing", "good-1", "good-2"]


async def test_overlaps_inside_one_batch_keep_the_first(agenda: Agenda) -> None:
    doctor = agenda.practitioners[0]
    start = next_day_at(14)
    results = await agenda.batch(
        [
            slot_item("a", doctor, start),
            slot_item("b", doctor, start + timedelta(minutes=5)),
            slot_item("c", doctor, start + timedelta(minutes=20)),
        ]
    )
    assert outcomes(results) == [("created", None), ("rejected", "slot_overlap"), ("created", None)]


async def test_no_overlap_across_publishers_of_the_same_practitioner(tenant: Tenant, agenda: Agenda) -> None:
    doctor = agenda.practitioners[0]
    second_software = await tenant.add_client([doctor["id"]])
    start = next_day_at(11)
    await agenda.batch([slot_item("mine", doctor, start)])
    response = await tenant.http.post(
        "/v1/slots/batch",
        json={"slots": [slot_item("theirs", doctor, start + timedelta(minutes=5))]},
        headers={"Authorization": f"Bearer {second_software['api_key']}"},
    )
    assert outcomes(response.json()["results"]) == [("rejected", "slot_overlap")]


async def test_a_client_cannot_see_or_touch_another_clients_slots(
    client: httpx.AsyncClient, tenant: Tenant, agenda: Agenda, other_tenant: Tenant
) -> None:
    doctor = agenda.practitioners[0]
    await agenda.batch([slot_item("private", doctor, next_day_at(15))])
    other = await new_agenda(tenant, practitioners=1)
    foreign = await new_agenda(other_tenant, practitioners=1)
    for intruder in (other, foreign):
        assert await intruder.slots() == []
        assert (await client.get("/v1/slots/private", headers=intruder.headers)).status_code == 404
        assert (await client.delete("/v1/slots/private", headers=intruder.headers)).status_code == 404
    # Still there, still free.
    [slot] = await agenda.slots()
    assert slot["status"] == "free"
    # Staff of the CPTS see it; staff of another CPTS do not.
    staff_view = (await client.get("/v1/slots", headers=tenant.handler)).json()["items"]
    assert [s["external_id"] for s in staff_view] == ["private"]
    assert (await client.get("/v1/slots", headers=other_tenant.handler)).json()["items"] == []


async def test_sync_withdraws_exactly_the_absent_free_slots_of_its_window(
    client: httpx.AsyncClient, agenda: Agenda, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    doctor, nurse = agenda.practitioners
    day = next_day_at(8)
    window = (day, day + timedelta(days=1))
    before_window = slot_item("before", doctor, day - timedelta(hours=2))
    after_window = slot_item("after", doctor, day + timedelta(days=1, hours=1))
    kept = slot_item("kept", doctor, day + timedelta(hours=1))
    dropped = slot_item("dropped", nurse, day + timedelta(hours=2))
    booked = slot_item("booked", nurse, day + timedelta(hours=3))
    results = await agenda.batch([before_window, after_window, kept, dropped, booked])
    booked_id = results[-1]["slot_id"]
    await set_status(sessionmaker, booked_id, "booked")

    new = slot_item("new", nurse, day + timedelta(hours=4))
    response = await client.post(
        "/v1/slots/sync",
        json={"window_start": window[0].isoformat(), "window_end": window[1].isoformat(), "slots": [kept, new]},
        headers=agenda.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert outcomes(body["results"]) == [("unchanged", None), ("created", None)]
    assert [w["external_id"] for w in body["withdrawn"]] == ["dropped"]
    assert [(c["external_id"], c["status"], c["problem"]["code"]) for c in body["conflicts"]] == [
        ("booked", "booked", "slot_booked")
    ]
    statuses = {s["external_id"]: s["status"] for s in await agenda.slots()}
    assert statuses == {
        "before": "free",
        "after": "free",
        "kept": "free",
        "dropped": "withdrawn",
        "booked": "booked",
        "new": "free",
    }
    bad_window = await client.post(
        "/v1/slots/sync",
        json={"window_start": window[1].isoformat(), "window_end": window[0].isoformat(), "slots": []},
        headers=agenda.headers,
    )
    assert bad_window.status_code == 422
    assert bad_window.json()["code"] == "invalid_window"


async def test_withdraw_then_republish(client: httpx.AsyncClient, agenda: Agenda) -> None:
    doctor = agenda.practitioners[0]
    item = slot_item("w", doctor, next_day_at(16))
    await agenda.batch([item])
    withdrawn = await client.delete("/v1/slots/w", headers=agenda.headers)
    assert withdrawn.status_code == 200
    assert (withdrawn.json()["status"], withdrawn.json()["version"]) == ("withdrawn", 2)
    twice = await client.delete("/v1/slots/w", headers=agenda.headers)
    assert (twice.status_code, twice.json()["version"]) == (200, 2)
    # A withdrawn slot frees its time for another slot of the practitioner...
    assert outcomes(await agenda.batch([slot_item("w2", doctor, next_day_at(16))])) == [("created", None)]
    # ...so re-opening the first one now overlaps.
    assert outcomes(await agenda.batch([item])) == [("rejected", "slot_overlap")]
    await client.delete("/v1/slots/w2", headers=agenda.headers)
    reopened = await agenda.batch([item])
    assert outcomes(reopened) == [("updated", None)]
    assert (await client.get("/v1/slots/w", headers=agenda.headers)).json()["status"] == "free"
    assert (await client.delete("/v1/slots/unknown", headers=agenda.headers)).status_code == 404


async def test_a_booked_slot_keeps_its_time_and_cannot_be_withdrawn_silently(
    client: httpx.AsyncClient, agenda: Agenda, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    doctor = agenda.practitioners[0]
    start = next_day_at(17)
    item = slot_item("taken", doctor, start)
    [result] = await agenda.batch([item])
    await set_status(sessionmaker, result["slot_id"], "booked")
    assert outcomes(await agenda.batch([item])) == [("unchanged", None)]
    moved = slot_item("taken", doctor, start + timedelta(hours=1))
    assert outcomes(await agenda.batch([moved])) == [("rejected", "slot_booked")]
    refused = await client.delete("/v1/slots/taken", headers=agenda.headers)
    assert refused.status_code == 409
    assert refused.json()["code"] == "slot_booked"
    put = await client.put(
        "/v1/slots/taken", json={k: v for k, v in moved.items() if k != "external_id"}, headers=agenda.headers
    )
    assert put.status_code == 409
    [slot] = await agenda.slots()
    assert (slot["status"], slot["version"], slot["start"]) == ("booked", 1, start.isoformat())


async def test_an_expired_hold_does_not_protect_the_slot(
    agenda: Agenda, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    from datetime import UTC, datetime

    doctor = agenda.practitioners[0]
    start = next_day_at(12)
    [result] = await agenda.batch([slot_item("held", doctor, start)])
    await set_status(sessionmaker, result["slot_id"], "held", hold_expires_at=datetime.now(UTC) + timedelta(minutes=3))
    assert outcomes(await agenda.batch([slot_item("held", doctor, start + timedelta(hours=1))])) == [
        ("rejected", "slot_booked")
    ]
    await set_status(sessionmaker, result["slot_id"], "held", hold_expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert [s["status"] for s in await agenda.slots()] == ["free"]
    assert outcomes(await agenda.batch([slot_item("held", doctor, start + timedelta(hours=1))])) == [("updated", None)]


async def test_home_visits_need_communes_and_default_to_the_sites(tenant: Tenant, agenda: Agenda) -> None:
    doctor = agenda.practitioners[0]  # its site covers 44109 and 44143
    start = next_day_at(13)
    no_communes = await tenant.add_practitioner(
        sites=[{"name": "Cabinet", "commune_insee": "44109", "home_visit_communes": []}]
    )
    await tenant.http.patch(
        f"/v1/clients/{agenda.client_id}",
        json={"practitioner_ids": [p["id"] for p in agenda.practitioners] + [no_communes["id"]]},
        headers=tenant.coordinator,
    )
    results = await agenda.batch(
        [
            slot_item("hh-default", doctor, start, modality="HH"),
            slot_item("hh-none", no_communes, start, modality="HH"),
            slot_item(
                "hh-given", no_communes, start + timedelta(hours=1), modality="HH", home_visit_communes=["44020"]
            ),
        ]
    )
    assert outcomes(results) == [("created", None), ("rejected", "home_visit_communes_required"), ("created", None)]
    communes = {s["external_id"]: s["home_visit_communes"] for s in await agenda.slots()}
    assert communes == {"hh-default": ["44109", "44143"], "hh-given": ["44020"]}


async def test_specialty_and_site_rules(tenant: Tenant) -> None:
    nurses = await new_agenda(tenant, practitioners=1, profession="60", specialty=None)
    nurse = nurses.practitioners[0]
    doctor = await tenant.add_practitioner()
    start = next_day_at(9, days=3)
    results = await nurses.batch(
        [
            slot_item("spec", nurse, start, specialty="SM54"),
            slot_item("site", nurse, start, site_id=doctor["sites"][0]["id"]),
            slot_item("vis", nurse, start, visibility=["EVERYONE"]),
            slot_item("ok", nurse, start, visibility=["PUBLIC", "CPTS", "PUBLIC"]),
        ]
    )
    assert outcomes(results) == [
        ("rejected", "specialty_not_allowed"),
        ("rejected", "site_not_found"),
        ("rejected", "validation_error"),
        ("created", None),
    ]
    [slot] = await nurses.slots()
    assert (slot["specialty"], slot["visibility"]) == (None, ["CPTS", "PUBLIC"])


async def test_naive_datetime_in_a_put_is_a_422_listing_the_field(client: httpx.AsyncClient, agenda: Agenda) -> None:
    body = {k: v for k, v in slot_item("n", agenda.practitioners[0], next_day_at(9)).items() if k != "external_id"}
    body["end"] = "2030-01-01T10:00:00"
    response = await client.put("/v1/slots/n", json=body, headers=agenda.headers)
    assert response.status_code == 422
    assert ["body", "end"] in [e["loc"] for e in response.json()["errors"]]
    assert await agenda.slots() == []
    naive_query = await client.get("/v1/slots", params={"start_from": "2030-01-01T10:00:00"}, headers=agenda.headers)
    assert naive_query.status_code == 422


async def test_oversized_batch_is_refused_whole(client: httpx.AsyncClient, agenda: Agenda) -> None:
    doctor = agenda.practitioners[0]
    start = next_day_at(6)
    items = [slot_item(f"x{i}", doctor, start + timedelta(minutes=10 * i), minutes=10) for i in range(1001)]
    response = await client.post("/v1/slots/batch", json={"slots": items}, headers=agenda.headers)
    assert response.status_code == 422
    assert await agenda.slots() == []


async def test_coordinators_publish_for_any_member_and_handlers_may_not(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    member = await tenant.add_practitioner()
    item = slot_item("desk-1", member, next_day_at(18))
    by_coordinator = await client.post("/v1/slots/batch", json={"slots": [item]}, headers=tenant.coordinator)
    assert outcomes(by_coordinator.json()["results"]) == [("created", None)]
    by_handler = await client.post("/v1/slots/batch", json={"slots": [item]}, headers=tenant.handler)
    assert by_handler.status_code == 403
    listed = (await client.get("/v1/slots", headers=tenant.handler)).json()["items"]
    assert [(s["external_id"], s["client_id"]) for s in listed] == [("desk-1", None)]


async def test_list_filters_and_pagination(client: httpx.AsyncClient, agenda: Agenda) -> None:
    doctor, nurse = agenda.practitioners
    start = next_day_at(7)
    await agenda.batch(
        [slot_item(f"p{i}", [doctor, nurse][i % 2], start + timedelta(minutes=20 * i)) for i in range(7)]
        + [slot_item("video", doctor, start + timedelta(hours=5), modality="VR")]
    )
    await client.delete("/v1/slots/p0", headers=agenda.headers)
    assert [s["external_id"] for s in await agenda.slots(status="withdrawn")] == ["p0"]
    assert len(await agenda.slots(status="free")) == 7
    assert [s["external_id"] for s in await agenda.slots(modality="VR")] == ["video"]
    assert len(await agenda.slots(practitioner_id=nurse["id"])) == 3
    window = await agenda.slots(
        start_from=(start + timedelta(minutes=20)).isoformat(), start_to=(start + timedelta(minutes=60)).isoformat()
    )
    assert [s["external_id"] for s in window] == ["p1", "p2"]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/slots", params=params, headers=agenda.headers)).json()
        seen += [s["external_id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [f"p{i}" for i in range(7)] + ["video"]
