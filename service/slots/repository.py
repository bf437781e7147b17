"""Slot queries. Batches are written with a handful of set-based statements (`unnest` of arrays),
not one round trip per slot."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Select, and_, any_, bindparam, func, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from service.db import INTS, TEXTS, TIMES, UUIDS
from service.practitioners.models import Practitioner, Site
from service.slots import domain
from service.slots import predicates as rules
from service.slots.domain import ExistingSlot, Modality, SlotSpec, SlotStatus, Visibility
from service.slots.models import Slot
from service.slots.predicates import ORM
from service.tenancy import get_or_raise, locked, scoped

_MODALITIES = {m.value: m for m in Modality}
_VISIBILITIES = {v.value: v for v in Visibility}


async def existing_by_external_id(
    session: AsyncSession, cpts_id: uuid.UUID, publisher_id: uuid.UUID, external_ids: Sequence[str], now: datetime
) -> dict[str, ExistingSlot]:
    """What is published under these external ids (plain rows: this runs for every batch)."""
    if not external_ids:
        return {}
    # One index probe per id, whatever plan PostgreSQL caches for this prepared statement (an
    # `IN (...)` list of 1000 parameters gets a generic plan that scans the publisher's slots).
    wanted = (
        func.unnest(bindparam("wanted", list(external_ids), type_=TEXTS))
        .table_valued("external_id")
        .render_derived(name="wanted")
    )
    rows = await session.execute(
        select(
            Slot.external_id,
            Slot.id,
            Slot.version,
            Slot.status,
            Slot.hold_expires_at,
            Slot.practitioner_id,
            Slot.site_id,
            Slot.start_at,
            Slot.end_at,
            Slot.modality,
            Slot.visibility,
            Slot.specialty,
            Slot.home_visit_communes,
            Slot.agenda_url,
        )
        .join(wanted, Slot.external_id == wanted.c.external_id)
        .where(Slot.cpts_id == cpts_id, Slot.publisher_id == publisher_id)
    )
    existing: dict[str, ExistingSlot] = {}
    for (
        ext,
        slot_id,
        version,
        status,
        hold_expires_at,
        pid,
        site_id,
        start,
        end,
        modality,
        vis,
        spec,
        communes,
        url,
    ) in rows:
        existing[ext] = ExistingSlot(
            id=slot_id,
            version=version,
            status=domain.effective_status(status, hold_expires_at, now),
            spec=SlotSpec(
                practitioner_id=pid,
                site_id=site_id,
                start=start,
                end=end,
                modality=_MODALITIES[modality],
                visibility=frozenset(_VISIBILITIES[v] for v in vis),
                specialty=spec,
                home_visit_communes=frozenset(communes),
                agenda_url=url,
            ),
        )
    return existing


@dataclass(frozen=True)
class PractitionerContext:
    id: uuid.UUID
    active: bool
    profession: str
    specialty: str | None
    sites: dict[uuid.UUID, list[str]]  # site id -> communes covered by home visits


async def practitioner_contexts(
    session: AsyncSession, cpts_id: uuid.UUID, practitioner_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, PractitionerContext]:
    if not practitioner_ids:
        return {}
    rows = await session.execute(
        select(
            Practitioner.id,
            Practitioner.active,
            Practitioner.profession,
            Practitioner.specialty,
            Site.id,
            Site.home_visit_communes,
        )
        .outerjoin(Site, Site.practitioner_id == Practitioner.id)
        .where(
            Practitioner.cpts_id == cpts_id,
            Practitioner.id == any_(bindparam("wanted", list(set(practitioner_ids)), type_=UUIDS)),
        )
    )
    contexts: dict[uuid.UUID, PractitionerContext] = {}
    for pid, active, profession, specialty, site_id, communes in rows:
        context = contexts.setdefault(pid, PractitionerContext(pid, active, profession, specialty, {}))
        if site_id is not None:
            context.sites[site_id] = list(communes)
    return contexts


@dataclass(frozen=True)
class NewSlot:
    id: uuid.UUID
    external_id: str
    spec: SlotSpec


def _spec_arrays(specs: Sequence[SlotSpec]) -> dict[str, list[Any]]:
    return {
        "practitioner_ids": [s.practitioner_id for s in specs],
        "site_ids": [s.site_id for s in specs],
        "starts": [s.start for s in specs],
        "ends": [s.end for s in specs],
        "modalities": [s.modality.value for s in specs],
        "visibilities": [",".join(sorted(v.value for v in s.visibility)) for s in specs],
        "specialties": [s.specialty for s in specs],
        "communes": [",".join(sorted(s.home_visit_communes)) for s in specs],
        "agenda_urls": [s.agenda_url for s in specs],
    }


_SPEC_BINDS = (
    bindparam("practitioner_ids", type_=UUIDS),
    bindparam("site_ids", type_=UUIDS),
    bindparam("starts", type_=TIMES),
    bindparam("ends", type_=TIMES),
    bindparam("modalities", type_=TEXTS),
    bindparam("visibilities", type_=TEXTS),
    bindparam("specialties", type_=TEXTS),
    bindparam("communes", type_=TEXTS),
    bindparam("agenda_urls", type_=TEXTS),
)

_INSERT = text(
    """
    INSERT INTO slot (id, cpts_id, publisher_id, client_id, external_id, practitioner_id, site_id, start_at, end_at,
                      modality, visibility, specialty, home_visit_communes, agenda_url, status, version,
                      published_at, updated_at)
    SELECT u.id, :cpts_id, :publisher_id, :client_id, u.external_id, u.practitioner_id, u.site_id, u.start_at,
           u.end_at, u.modality, string_to_array(u.visibility, ','), u.specialty, string_to_array(u.communes, ','),
           u.agenda_url, 'free', 1, :now, :now
    FROM unnest(CAST(:ids AS uuid[]), CAST(:external_ids AS text[]), CAST(:practitioner_ids AS uuid[]),
                CAST(:site_ids AS uuid[]), CAST(:starts AS timestamptz[]), CAST(:ends AS timestamptz[]),
                CAST(:modalities AS text[]), CAST(:visibilities AS text[]), CAST(:specialties AS text[]),
                CAST(:communes AS text[]), CAST(:agenda_urls AS text[]))
         WITH ORDINALITY AS u(id, external_id, practitioner_id, site_id, start_at, end_at, modality, visibility,
                              specialty, communes, agenda_url, ord)
    ORDER BY u.ord
    -- Skips an item whose external id was just taken, or that overlaps a live slot of the same
    -- practitioner (the exclusion constraint), including one inserted earlier in this statement.
    ON CONFLICT DO NOTHING
    RETURNING id
    """
).bindparams(bindparam("ids", type_=UUIDS), bindparam("external_ids", type_=TEXTS), *_SPEC_BINDS)


async def insert_many(
    session: AsyncSession,
    cpts_id: uuid.UUID,
    publisher_id: uuid.UUID,
    client_id: uuid.UUID | None,
    slots: Sequence[NewSlot],
    now: datetime,
) -> set[uuid.UUID]:
    """Insert what can be inserted; answer the ids that were."""
    if not slots:
        return set()
    rows = await session.execute(
        _INSERT,
        {
            "cpts_id": cpts_id,
            "publisher_id": publisher_id,
            "client_id": client_id,
            "now": now,
            "ids": [s.id for s in slots],
            "external_ids": [s.external_id for s in slots],
            **_spec_arrays([s.spec for s in slots]),
        },
    )
    return {row[0] for row in rows}


@dataclass(frozen=True)
class SlotChange:
    id: uuid.UUID
    version: int  # the version the decision was taken on
    spec: SlotSpec
    moves: bool


_UPDATE = text(
    f"""
    UPDATE slot AS s
    SET practitioner_id = u.practitioner_id, site_id = u.site_id, start_at = u.start_at, end_at = u.end_at,
        modality = u.modality, visibility = string_to_array(u.visibility, ','), specialty = u.specialty,
        home_visit_communes = string_to_array(u.communes, ','), agenda_url = u.agenda_url,
        status = CASE WHEN s.status = 'withdrawn' THEN 'free'
                      WHEN u.moves AND s.status = 'held' THEN 'free' ELSE s.status END,
        -- Moving a slot voids an expired hold: nobody may confirm the old time.
        hold_token = CASE WHEN u.moves THEN NULL ELSE s.hold_token END,
        hold_expires_at = CASE WHEN u.moves THEN NULL ELSE s.hold_expires_at END,
        withdrawn_at = NULL, version = s.version + 1, updated_at = :now
    FROM unnest(CAST(:ids AS uuid[]), CAST(:versions AS int[]), CAST(:moves AS boolean[]),
                CAST(:practitioner_ids AS uuid[]), CAST(:site_ids AS uuid[]), CAST(:starts AS timestamptz[]),
                CAST(:ends AS timestamptz[]), CAST(:modalities AS text[]), CAST(:visibilities AS text[]),
                CAST(:specialties AS text[]), CAST(:communes AS text[]), CAST(:agenda_urls AS text[]))
         AS u(id, version, moves, practitioner_id, site_id, start_at, end_at, modality, visibility, specialty, communes,
              agenda_url)
    WHERE s.id = u.id AND s.cpts_id = :cpts_id AND s.version = u.version
      -- A slot held (unexpired) or booked meanwhile keeps its time.
      AND (NOT u.moves OR s.status = 'withdrawn' OR {rules.AVAILABLE_SQL})
    RETURNING s.id
    """  # noqa: S608 - module constants, no input
).bindparams(
    bindparam("ids", type_=UUIDS),
    bindparam("versions", type_=INTS),
    bindparam("moves", type_=ARRAY(Boolean)),
    *_SPEC_BINDS,
)


async def update_many(
    session: AsyncSession, cpts_id: uuid.UUID, changes: Sequence[SlotChange], now: datetime
) -> set[uuid.UUID]:
    """Apply the changes whose slot is still as read; answer the ids updated. Raises the
    exclusion violation if a change would overlap another live slot."""
    if not changes:
        return set()
    rows = await session.execute(
        _UPDATE,
        {
            "cpts_id": cpts_id,
            "now": now,
            "ids": [c.id for c in changes],
            "versions": [c.version for c in changes],
            "moves": [c.moves for c in changes],
            **_spec_arrays([c.spec for c in changes]),
        },
    )
    return {row[0] for row in rows}


async def get_by_external_id(
    session: AsyncSession, cpts_id: uuid.UUID, publisher_id: uuid.UUID, external_id: str, *, for_update: bool = False
) -> Slot | None:
    query = scoped(Slot, cpts_id).where(Slot.publisher_id == publisher_id, Slot.external_id == external_id)
    found: Slot | None = await session.scalar(locked(query) if for_update else query)
    return found


async def get(session: AsyncSession, cpts_id: uuid.UUID, slot_id: uuid.UUID, *, for_update: bool = False) -> Slot:
    return await get_or_raise(session, Slot, cpts_id, slot_id, "slot", for_update=for_update)


def withdraw_values(now: datetime) -> dict[str, Any]:
    return {
        "status": SlotStatus.withdrawn.value,
        "withdrawn_at": now,
        "hold_token": None,
        "hold_expires_at": None,
        "version": Slot.version + 1,
        "updated_at": now,
    }


async def withdraw_unbooked(session: AsyncSession, cpts_id: uuid.UUID, slot_id: uuid.UUID, now: datetime) -> bool:
    """Withdraw a slot that is free or only held (the practitioner's agenda has the last word)."""
    result = await session.execute(
        update(Slot)
        .where(
            Slot.cpts_id == cpts_id,
            Slot.id == slot_id,
            Slot.status.in_([SlotStatus.free.value, SlotStatus.held.value]),
        )
        .values(**withdraw_values(now))
        .returning(Slot.id)
    )
    return result.scalar_one_or_none() is not None


async def withdraw_booked(session: AsyncSession, cpts_id: uuid.UUID, slot_id: uuid.UUID, now: datetime) -> None:
    """The practitioner cancels a booked slot: it is withdrawn (its booking is cancelled by the caller)."""
    await session.execute(
        update(Slot)
        .where(Slot.cpts_id == cpts_id, Slot.id == slot_id, Slot.status == SlotStatus.booked.value)
        .values(status=SlotStatus.withdrawn.value, withdrawn_at=now, version=Slot.version + 1, updated_at=now)
    )


async def withdraw_absent(
    session: AsyncSession,
    cpts_id: uuid.UUID,
    publisher_id: uuid.UUID,
    window: tuple[datetime, datetime],
    present: Sequence[str],
    now: datetime,
) -> list[tuple[uuid.UUID, str]]:
    """Withdraw the publisher's free slots starting in the window and not in `present`."""
    result = await session.execute(
        update(Slot)
        .where(
            Slot.cpts_id == cpts_id,
            Slot.publisher_id == publisher_id,
            Slot.start_at >= window[0],
            Slot.start_at < window[1],
            Slot.external_id.not_in(list(present)),
            rules.available(ORM, now),
        )
        .values(**withdraw_values(now))
        .returning(Slot.id, Slot.external_id)
    )
    return sorted(((row[0], row[1]) for row in result), key=lambda r: r[1])


async def taken_absent(
    session: AsyncSession,
    cpts_id: uuid.UUID,
    publisher_id: uuid.UUID,
    window: tuple[datetime, datetime],
    present: Sequence[str],
    now: datetime,
) -> list[tuple[uuid.UUID, str, str]]:
    """Held or booked slots of the window that the publisher no longer lists."""
    rows = await session.execute(
        select(Slot.id, Slot.external_id, rules.effective_status(ORM, now))
        .where(
            Slot.cpts_id == cpts_id,
            Slot.publisher_id == publisher_id,
            Slot.start_at >= window[0],
            Slot.start_at < window[1],
            Slot.external_id.not_in(list(present)),
            rules.taken(ORM, now),
        )
        .order_by(Slot.external_id)
    )
    return [(row[0], row[1], row[2]) for row in rows]


def list_query(
    cpts_id: uuid.UUID,
    now: datetime,
    *,
    publisher_id: uuid.UUID | None,
    start_from: datetime | None,
    start_to: datetime | None,
    practitioner_id: uuid.UUID | None,
    status: str | None,
    modality: str | None,
    after: tuple[Any, ...] | None,
) -> Select[Slot, str]:
    status_now = rules.effective_status(ORM, now)
    query = select(Slot, status_now).where(Slot.cpts_id == cpts_id)
    if publisher_id is not None:
        query = query.where(Slot.publisher_id == publisher_id)
    if start_from is not None:
        query = query.where(Slot.start_at >= start_from)
    if start_to is not None:
        query = query.where(Slot.start_at < start_to)
    if practitioner_id is not None:
        query = query.where(Slot.practitioner_id == practitioner_id)
    if status is not None:
        query = query.where(
            rules.available(ORM, now)
            if status == SlotStatus.free
            else and_(Slot.status == status, status_now == status)
        )
    if modality is not None:
        query = query.where(Slot.modality == modality)
    if after is not None:
        query = query.where(tuple_(Slot.start_at, Slot.id) > after)
    return query.order_by(Slot.start_at, Slot.id)


_FREE_SLOTS = text(
    f"""
    SELECT s.id, s.start_at, s.end_at, s.modality, s.specialty, s.visibility, s.home_visit_communes, s.agenda_url,
           p.id AS practitioner_id, p.family_name, p.given_name, p.profession,
           p.specialty AS practitioner_specialty, p.phone AS practitioner_phone,
           st.id AS site_id, st.name AS site_name, st.address, st.postal_code, st.commune_insee, st.phone AS site_phone,
           st.latitude, st.longitude
    FROM slot s
    JOIN practitioner p ON p.id = s.practitioner_id
    JOIN site st ON st.id = s.site_id
    WHERE s.cpts_id = :cpts_id AND {rules.OFFERABLE_SQL} AND p.active
      AND s.start_at >= :start_from AND s.start_at < :start_to
      AND (CAST(:profession AS text) IS NULL OR p.profession = :profession)
      AND (CAST(:specialty AS text) IS NULL OR s.specialty = :specialty)
      AND (CAST(:modalities AS text[]) IS NULL OR s.modality = ANY(:modalities))
      -- search: in practice at a site of the commune; at home covering it; by video anywhere
      AND (CAST(:commune AS text) IS NULL
           OR (s.modality = 'AMB' AND st.commune_insee = :commune)
           OR (s.modality = 'HH' AND :commune = ANY(s.home_visit_communes))
           OR s.modality = 'VR')
      -- suggestions: the patient travels to any practice or uses video; a home visit must cover them
      AND (CAST(:home_visits_for AS text) IS NULL OR s.modality <> 'HH'
           OR :home_visits_for = ANY(s.home_visit_communes))
      AND (CAST(:practitioner AS uuid) IS NULL OR s.practitioner_id = CAST(:practitioner AS uuid))
      AND (CAST(:after_start AS timestamptz) IS NULL OR (s.start_at, s.id) > (:after_start, :after_id))
    ORDER BY s.start_at, s.id
    LIMIT :limit
    """  # noqa: S608 - module constants, no input
).bindparams(bindparam("modalities", type_=TEXTS), bindparam("after_id", type_=UUID(as_uuid=True)))


async def free_slots(
    session: AsyncSession,
    cpts_id: uuid.UUID,
    now: datetime,
    *,
    start_from: datetime,
    start_to: datetime,
    limit: int,
    profession: str | None = None,
    specialty: str | None = None,
    modalities: Sequence[str] | None = None,
    commune_insee: str | None = None,
    home_visits_for: str | None = None,
    after: tuple[Any, ...] | None = None,
    practitioner_id: uuid.UUID | None = None,
) -> list[Any]:
    """Slots the CPTS's call handlers may offer, earliest first, with their practitioner and site:
    the columns an answer shows, from a statement compiled once (this is a hot path)."""
    after_start, after_id = after if after is not None else (None, None)
    rows = await session.execute(
        _FREE_SLOTS,
        {
            "cpts_id": cpts_id,
            "now": now,
            "start_from": start_from,
            "start_to": start_to,
            "profession": profession,
            "specialty": specialty,
            "modalities": list(modalities) if modalities else None,
            "commune": commune_insee,
            "home_visits_for": home_visits_for,
            "after_start": after_start,
            "after_id": after_id,
            "practitioner": practitioner_id,
            "limit": limit,
        },
    )
    return list(rows)
