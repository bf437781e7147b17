"""Slot publication: validate each item, decide with the pure rules, write in bulk."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth import Principal
from service.batches import invalid_item, problem_out
from service.cpts import repository as cpts_repository
from service.cpts.models import Cpts
from service.errors import Conflict, Invalid, ItemProblem, NotFound, error_for_status, field_error
from service.pagination import BY_START, Page
from service.reference.codes import PHYSICIAN, specialties
from service.slots import repository
from service.slots.domain import (
    SEARCH_WINDOW,
    Modality,
    Outcome,
    PublicationRules,
    SlotSpec,
    SlotStatus,
    Visibility,
    decide,
    effective_status,
)
from service.slots.models import Slot
from service.slots.repository import NewSlot, PractitionerContext, SlotChange
from service.slots.schemas import (
    EXTERNAL_ID,
    ItemResult,
    PractitionerSummary,
    SiteSummary,
    SlotFound,
    SlotItem,
    SlotOut,
    SlotPut,
    SlotRef,
    SyncOut,
)

_ITEM = TypeAdapter(SlotItem)
EXCLUSION_VIOLATION = "23P01"


@dataclass(frozen=True)
class Publisher:
    cpts_id: uuid.UUID
    # Namespace of external ids: the software client, or the CPTS itself for its coordinators.
    publisher_id: uuid.UUID
    client_id: uuid.UUID | None
    allowed: frozenset[uuid.UUID] | None  # None: any practitioner of the CPTS

    def may_publish_for(self, practitioner_id: uuid.UUID) -> bool:
        return self.allowed is None or practitioner_id in self.allowed


def publisher_of(principal: Principal) -> Publisher:
    if principal.is_software:
        return Publisher(principal.cpts_id, principal.id, principal.id, principal.practitioner_ids)
    return Publisher(principal.cpts_id, principal.cpts_id, None, None)


def publication_rules(cpts: Cpts) -> PublicationRules:
    return PublicationRules(
        min_duration=timedelta(minutes=cpts.min_slot_minutes),
        max_duration=timedelta(minutes=cpts.max_slot_minutes),
        horizon=timedelta(days=cpts.publication_horizon_days),
    )


def rejected(external_id: str | None, problem: ItemProblem, errors: list[dict[str, Any]] | None = None) -> ItemResult:
    return ItemResult(external_id=external_id, outcome=Outcome.rejected, problem=problem_out(problem, errors))


def _raw_external_id(raw: Any) -> str | None:
    """The external id of a rejected item, when it is one (a forged one is not echoed back)."""
    value = raw.get("external_id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) and EXTERNAL_ID.match(value) else None


def to_spec(
    item: SlotItem, publisher: Publisher, contexts: dict[uuid.UUID, PractitionerContext]
) -> SlotSpec | ItemProblem:
    """The slot an item describes, completed from its practitioner and site, or why it cannot be."""
    context = contexts.get(item.practitioner_id) if publisher.may_publish_for(item.practitioner_id) else None
    if context is None:
        return ItemProblem(404, "practitioner_not_found", "No such practitioner among those you publish for.")
    if not context.active:
        return ItemProblem(422, "practitioner_inactive", "This practitioner is no longer an active member.")
    if item.site_id not in context.sites:
        return ItemProblem(422, "site_not_found", "This site is not one of the practitioner's.")
    specialty = item.specialty
    if specialty is not None and context.profession != PHYSICIAN:
        return ItemProblem(422, "specialty_not_allowed", "Only physicians' slots carry a specialty (TRE_R38).")
    if specialty is not None and specialty not in specialties():
        return ItemProblem(422, "unknown_specialty", f"'{specialty}' is not an SNP specialty (TRE_R38).")
    if specialty is None and context.profession == PHYSICIAN:
        specialty = context.specialty
    communes = item.home_visit_communes
    if communes is None:
        communes = context.sites[item.site_id] if item.modality == "HH" else []
    return SlotSpec(
        practitioner_id=item.practitioner_id,
        site_id=item.site_id,
        start=item.start,
        end=item.end,
        modality=item.modality,
        visibility=frozenset(item.visibility),
        specialty=specialty,
        home_visit_communes=frozenset(communes),
        agenda_url=item.agenda_url,
    )


def _is_exclusion_violation(exc: IntegrityError) -> bool:
    return getattr(exc.orig, "sqlstate", None) == EXCLUSION_VIOLATION


async def _apply_changes(
    session: AsyncSession, cpts_id: uuid.UUID, changes: list[SlotChange], now: datetime
) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
    """(updated ids, ids refused for overlapping another live slot). One statement unless some
    change overlaps; then each change alone, to refuse only the offending ones."""
    if not changes:
        return set(), set()
    try:
        async with session.begin_nested():
            return await repository.update_many(session, cpts_id, changes, now), set()
    except IntegrityError as exc:
        if not _is_exclusion_violation(exc):
            raise
    updated: set[uuid.UUID] = set()
    overlapping: set[uuid.UUID] = set()
    for change in changes:
        try:
            async with session.begin_nested():
                updated |= await repository.update_many(session, cpts_id, [change], now)
        except IntegrityError as exc:
            if not _is_exclusion_violation(exc):
                raise
            overlapping.add(change.id)
    return updated, overlapping


OVERLAP = ItemProblem(409, "slot_overlap", "The practitioner already has a live slot at this time.")


async def publish(
    session: AsyncSession, principal: Principal, raw_items: Sequence[Any], now: datetime
) -> list[ItemResult]:
    """Create, update or leave unchanged each item; one bad item never rejects the others."""
    cpts = await cpts_repository.get(session, principal.cpts_id)
    rules = publication_rules(cpts)
    publisher = publisher_of(principal)
    results: list[ItemResult | None] = [None] * len(raw_items)

    items: list[tuple[int, SlotItem]] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_items):
        try:
            item = _ITEM.validate_python(raw)
        except ValidationError as exc:
            problem, errors = invalid_item(exc, "slot")
            results[index] = rejected(_raw_external_id(raw), problem, errors)
            continue
        if item.external_id in seen:
            problem = ItemProblem(422, "duplicate_external_id", "This external_id appears earlier in the same batch.")
            results[index] = rejected(item.external_id, problem)
            continue
        seen.add(item.external_id)
        items.append((index, item))

    contexts = await repository.practitioner_contexts(
        session,
        publisher.cpts_id,
        [i.practitioner_id for _, i in items if publisher.may_publish_for(i.practitioner_id)],
    )
    existing = await repository.existing_by_external_id(
        session, publisher.cpts_id, publisher.publisher_id, [i.external_id for _, i in items], now
    )
    creations: list[tuple[int, NewSlot]] = []
    changes: list[tuple[int, str, SlotChange]] = []
    for index, item in items:
        spec = to_spec(item, publisher, contexts)
        if isinstance(spec, ItemProblem):
            results[index] = rejected(item.external_id, spec)
            continue
        current = existing.get(item.external_id)
        decision = decide(current, spec, now, rules)
        if decision.outcome is Outcome.rejected:
            assert decision.problem is not None
            results[index] = rejected(item.external_id, decision.problem)
        elif decision.outcome is Outcome.unchanged:
            assert current is not None
            results[index] = ItemResult(
                external_id=item.external_id, outcome=Outcome.unchanged, slot_id=current.id, version=current.version
            )
        elif current is None:
            creations.append((index, NewSlot(uuid.uuid4(), item.external_id, spec)))
        else:
            changes.append((index, item.external_id, SlotChange(current.id, current.version, spec, decision.moves)))

    # Changes first, so that a slot moved away frees its time for a new one of the same batch.
    updated, overlapping = await _apply_changes(session, publisher.cpts_id, [c for _, _, c in changes], now)
    for index, external_id, change in changes:
        if change.id in updated:
            results[index] = ItemResult(
                external_id=external_id, outcome=Outcome.updated, slot_id=change.id, version=change.version + 1
            )
        elif change.id in overlapping:
            results[index] = rejected(external_id, OVERLAP)
        else:
            results[index] = rejected(
                external_id,
                ItemProblem(409, "slot_booked", "The slot was held or booked meanwhile: its time cannot change."),
            )

    inserted = await repository.insert_many(
        session, publisher.cpts_id, publisher.publisher_id, publisher.client_id, [n for _, n in creations], now
    )
    missed = [(index, new) for index, new in creations if new.id not in inserted]
    # Not inserted: the same external id was created concurrently (a retry of this very batch is
    # then unchanged), or the slot overlaps a live one.
    raced = await repository.existing_by_external_id(
        session, publisher.cpts_id, publisher.publisher_id, [n.external_id for _, n in missed], now
    )
    for index, new in creations:
        if new.id in inserted:
            results[index] = ItemResult(external_id=new.external_id, outcome=Outcome.created, slot_id=new.id, version=1)
            continue
        twin = raced.get(new.external_id)
        if twin is None:
            results[index] = rejected(new.external_id, OVERLAP)
        elif twin.spec == new.spec:
            results[index] = ItemResult(
                external_id=new.external_id, outcome=Outcome.unchanged, slot_id=twin.id, version=twin.version
            )
        else:
            results[index] = rejected(
                new.external_id, ItemProblem(409, "concurrent_update", "The slot was changed concurrently; retry.")
            )
    await session.flush()
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


async def sync(
    session: AsyncSession,
    principal: Principal,
    window: tuple[datetime, datetime],
    raw_items: Sequence[Any],
    now: datetime,
) -> SyncOut:
    """Replace the publisher's slots of a window with the given list."""
    if window[1] <= window[0]:
        raise Invalid("invalid_window", "window_end must be after window_start.")
    results = await publish(session, principal, raw_items, now)
    present = sorted({r.external_id for r in results if r.external_id is not None})
    publisher = publisher_of(principal)
    withdrawn = await repository.withdraw_absent(
        session, publisher.cpts_id, publisher.publisher_id, window, present, now
    )
    taken = await repository.taken_absent(session, publisher.cpts_id, publisher.publisher_id, window, present, now)
    conflict = ItemProblem(409, "slot_booked", "Held or booked: not withdrawn. Cancel the booking explicitly.")
    return SyncOut(
        results=results,
        withdrawn=[SlotRef(external_id=e, slot_id=i, status=SlotStatus.withdrawn) for i, e in withdrawn],
        conflicts=[
            SlotRef(external_id=e, slot_id=i, status=SlotStatus(s), problem=problem_out(conflict)) for i, e, s in taken
        ],
    )


async def put_one(
    session: AsyncSession, principal: Principal, external_id: str, body: SlotPut, now: datetime
) -> tuple[Slot, Outcome]:
    if body.external_id is not None and body.external_id != external_id:
        problem = "the body's external_id differs from the one in the path"
        raise Invalid("external_id_mismatch", problem, errors=[field_error(["body", "external_id"], problem)])
    item = {**body.model_dump(mode="json"), "external_id": external_id}
    [result] = await publish(session, principal, [item], now)
    if result.outcome is Outcome.rejected:
        assert result.problem is not None
        extra = {"errors": result.problem.errors} if result.problem.errors else {}
        raise error_for_status(result.problem.status, result.problem.code, result.problem.detail, **extra)
    assert result.slot_id is not None
    slot = await repository.get(session, principal.cpts_id, result.slot_id)
    await session.refresh(slot)
    return slot, result.outcome


async def slot_to_withdraw(
    session: AsyncSession, principal: Principal, external_id: str, now: datetime
) -> tuple[Slot, SlotStatus]:
    """The publisher's slot and its status as callers see it; a slot that started can no longer be
    withdrawn (indicators and compensation rest on it), unless it already was."""
    publisher = publisher_of(principal)
    slot = await repository.get_by_external_id(session, publisher.cpts_id, publisher.publisher_id, external_id)
    if slot is None:
        raise NotFound("slot")
    status = effective_status(slot.status, slot.hold_expires_at, now)
    if status is not SlotStatus.withdrawn and slot.start_at <= now:
        raise Conflict("slot_started", "The slot has started: it can no longer be withdrawn.")
    return slot, status


async def withdraw_unbooked(session: AsyncSession, slot: Slot, now: datetime) -> None:
    """Withdraw a slot that is free or only held (the practitioner's agenda has the last word)."""
    if not await repository.withdraw_unbooked(session, slot.cpts_id, slot.id, now):
        raise Conflict("slot_booked", "The slot was booked a moment ago; withdraw it with ?cancel_booking=true.")


def to_out(slot: Slot, status: str) -> SlotOut:
    return SlotOut(
        id=slot.id,
        external_id=slot.external_id,
        client_id=slot.client_id,
        practitioner_id=slot.practitioner_id,
        site_id=slot.site_id,
        start=slot.start_at,
        end=slot.end_at,
        modality=Modality(slot.modality),
        visibility=[Visibility(v) for v in sorted(slot.visibility)],
        specialty=slot.specialty,
        home_visit_communes=list(slot.home_visit_communes),
        agenda_url=slot.agenda_url,
        status=SlotStatus(status),
        version=slot.version,
        published_at=slot.published_at,
        updated_at=slot.updated_at,
    )


def found_of(row: Any) -> SlotFound:
    """A free slot as the search and the suggestions show it (a row of `repository.free_slots`)."""
    return SlotFound(
        id=row.id,
        start=row.start_at,
        end=row.end_at,
        modality=Modality(row.modality),
        specialty=row.specialty,
        visibility=[Visibility(v) for v in sorted(row.visibility)],
        home_visit_communes=list(row.home_visit_communes),
        agenda_url=row.agenda_url,
        practitioner=PractitionerSummary(
            id=row.practitioner_id,
            family_name=row.family_name,
            given_name=row.given_name,
            profession=row.profession,
            specialty=row.practitioner_specialty,
            phone=row.practitioner_phone,
        ),
        site=SiteSummary.of(
            id=row.site_id,
            name=row.site_name,
            address=row.address,
            postal_code=row.postal_code,
            commune_insee=row.commune_insee,
            phone=row.site_phone,
            latitude=row.latitude,
            longitude=row.longitude,
        ),
    )


async def search(
    session: AsyncSession,
    principal: Principal,
    now: datetime,
    *,
    start_from: datetime | None,
    start_to: datetime | None,
    limit: int,
    cursor: str | None,
    profession: str | None = None,
    specialty: str | None = None,
    modality: Modality | None = None,
    commune_insee: str | None = None,
) -> Page[SlotFound]:
    """Slots the CPTS's handlers may offer, earliest first (default: the next SEARCH_WINDOW)."""
    begin = max(start_from or now, now)
    end = start_to or begin + SEARCH_WINDOW
    found = await repository.free_slots(
        session,
        principal.cpts_id,
        now,
        start_from=begin,
        start_to=end,
        limit=limit + 1,
        profession=profession,
        specialty=specialty,
        modalities=[modality.value] if modality else None,
        commune_insee=commune_insee,
        after=BY_START.decode(cursor),
    )
    rows, next_cursor = BY_START.page(found, limit, lambda r: (r.start_at, r.id))
    return Page(items=[found_of(row) for row in rows], next_cursor=next_cursor)


async def list_slots(
    session: AsyncSession,
    principal: Principal,
    now: datetime,
    *,
    start_from: datetime | None,
    start_to: datetime | None,
    practitioner_id: uuid.UUID | None,
    status: str | None,
    modality: Modality | None,
    limit: int,
    cursor: str | None,
) -> Page[SlotOut]:
    """A software client's own slots; staff see all the CPTS's."""
    publisher = publisher_of(principal)
    query = repository.list_query(
        principal.cpts_id,
        now,
        publisher_id=publisher.publisher_id if principal.is_software else None,
        start_from=start_from,
        start_to=start_to,
        practitioner_id=practitioner_id,
        status=status,
        modality=modality.value if modality else None,
        after=BY_START.decode(cursor),
    )
    listed = [(slot, state) for slot, state in await session.execute(query.limit(limit + 1))]
    rows, next_cursor = BY_START.page(listed, limit, lambda r: (r[0].start_at, r[0].id))
    return Page(items=[to_out(slot, state) for slot, state in rows], next_cursor=next_cursor)


async def get_published(session: AsyncSession, principal: Principal, external_id: str, now: datetime) -> SlotOut:
    """One of the caller's published slots, by its external id."""
    publisher = publisher_of(principal)
    slot = await repository.get_by_external_id(session, publisher.cpts_id, publisher.publisher_id, external_id)
    if slot is None:
        raise NotFound("slot")
    return to_out(slot, effective_status(slot.status, slot.hold_expires_at, now))
