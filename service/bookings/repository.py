"""Booking queries. Claiming a slot is one conditional UPDATE: zero rows means someone else has
it. No check-then-insert, no serializable retries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

import asyncpg
from sqlalchemy import Select, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from service import idempotency
from service.audit import service as audit
from service.bookings.domain import ACTIVE, BookingStatus
from service.bookings.models import Booking
from service.bookings.predicates import ENDED_HOLD_STATUS_SQL
from service.db import DECLINED, DriverStatement, StatementConnection, fetchrow, merged
from service.errors import NotFound
from service.notifications import patients, sas
from service.notifications import service as notifications
from service.orientation import log
from service.orientation.log import LockedRequest
from service.practitioners.models import Practitioner, Site
from service.slots.domain import SlotStatus
from service.slots.models import Slot
from service.slots.predicates import OFFERABLE_SQL
from service.tenancy import get_or_raise, locked, scoped


async def confirm_slot(session: AsyncSession, cpts_id: uuid.UUID, slot_id: uuid.UUID, hold_token: uuid.UUID) -> bool:
    """Turn our hold into a booking. The token must still be ours: an expired hold nobody took
    is re-claimed here; one another handler took over (or a slot moved or withdrawn) is not."""
    result = await session.execute(
        update(Slot)
        .where(
            Slot.cpts_id == cpts_id,
            Slot.id == slot_id,
            Slot.status == SlotStatus.held.value,
            Slot.hold_token == hold_token,
        )
        .values(status=SlotStatus.booked.value, hold_token=None, hold_expires_at=None)
        .returning(Slot.id)
    )
    return result.scalar_one_or_none() is not None


async def free_held_slot(
    session: AsyncSession, cpts_id: uuid.UUID, slot_id: uuid.UUID, hold_token: uuid.UUID | None
) -> None:
    """Give the slot back, if the hold on it is still this one."""
    await session.execute(
        update(Slot)
        .where(
            Slot.cpts_id == cpts_id,
            Slot.id == slot_id,
            Slot.status == SlotStatus.held.value,
            Slot.hold_token == hold_token,
        )
        .values(status=SlotStatus.free.value, hold_token=None, hold_expires_at=None)
    )


async def free_booked_slot(session: AsyncSession, cpts_id: uuid.UUID, slot_id: uuid.UUID) -> None:
    """A cancelled appointment's slot is free for another patient."""
    await session.execute(
        update(Slot)
        .where(Slot.cpts_id == cpts_id, Slot.id == slot_id, Slot.status == SlotStatus.booked.value)
        .values(status=SlotStatus.free.value)
    )


async def get(session: AsyncSession, cpts_id: uuid.UUID, booking_id: uuid.UUID, *, for_update: bool = False) -> Booking:
    return await get_or_raise(session, Booking, cpts_id, booking_id, "booking", for_update=for_update)


async def active_hold_of_request(session: AsyncSession, cpts_id: uuid.UUID, request_id: uuid.UUID) -> Booking | None:
    query = scoped(Booking, cpts_id).where(Booking.request_id == request_id, Booking.status == BookingStatus.held)
    found: Booking | None = await session.scalar(locked(query))
    return found


async def active_of_slot(
    session: AsyncSession, cpts_id: uuid.UUID, slot_id: uuid.UUID, *, for_update: bool = False
) -> Booking | None:
    query = scoped(Booking, cpts_id).where(Booking.slot_id == slot_id, Booking.status.in_([s.value for s in ACTIVE]))
    found: Booking | None = await session.scalar(locked(query) if for_update else query)
    return found


def _with_slots(cpts_id: uuid.UUID) -> Select[Booking, Slot, Practitioner, Site]:
    return (
        select(Booking, Slot, Practitioner, Site)
        .join(Slot, Slot.id == Booking.slot_id)
        .join(Practitioner, Practitioner.id == Slot.practitioner_id)
        .join(Site, Site.id == Slot.site_id)
        .where(Booking.cpts_id == cpts_id)
    )


async def with_slot(
    session: AsyncSession, cpts_id: uuid.UUID, booking_id: uuid.UUID
) -> tuple[Booking, Slot, Practitioner, Site]:
    row = (await session.execute(_with_slots(cpts_id).where(Booking.id == booking_id))).first()
    if row is None:
        raise NotFound("booking")
    return row[0], row[1], row[2], row[3]


async def of_request(
    session: AsyncSession, cpts_id: uuid.UUID, request_id: uuid.UUID
) -> list[tuple[Booking, Slot, Practitioner, Site]]:
    query = _with_slots(cpts_id).where(Booking.request_id == request_id).order_by(Booking.created_at, Booking.id)
    return [(b, s, p, site) for b, s, p, site in await session.execute(query)]


# --- the hot path: compiled statements, few round trips ------------------------------------------


@dataclass(frozen=True)
class RequestToBook:
    request: LockedRequest
    hold_ttl_seconds: int


# Locks the request (lock order: request first), and ends its current hold, if any, freeing the
# slot when the hold on it is still this one: switching slots, or booking straight away. The
# sub-statements that write run after the lock is taken (they read `locked`); an error raised
# afterwards rolls them back with the rest.
_LOCK_REQUEST_ENDING_HOLD = text(
    f"""
    WITH locked AS (
        SELECT r.id, r.cpts_id, r.status, c.hold_ttl_seconds
        FROM care_request AS r JOIN cpts AS c ON c.id = r.cpts_id
        WHERE r.id = :id AND r.cpts_id = :cpts_id
        FOR UPDATE OF r
    ), ended AS (
        UPDATE booking
        SET status = {ENDED_HOLD_STATUS_SQL}, ended_at = :now
        WHERE request_id = (SELECT id FROM locked) AND cpts_id = :cpts_id AND status = 'held'
        RETURNING slot_id, hold_token
    ), freed AS (
        UPDATE slot AS s SET status = 'free', hold_token = NULL, hold_expires_at = NULL
        FROM ended
        WHERE s.id = ended.slot_id AND s.cpts_id = :cpts_id AND s.status = 'held' AND s.hold_token = ended.hold_token
    )
    SELECT id, cpts_id, status, hold_ttl_seconds FROM locked
    """  # noqa: S608 - module constants, no input
)


async def lock_request_ending_hold(
    session: AsyncSession, cpts_id: uuid.UUID, request_id: uuid.UUID, now: datetime
) -> RequestToBook:
    row = (await session.execute(_LOCK_REQUEST_ENDING_HOLD, {"id": request_id, "cpts_id": cpts_id, "now": now})).first()
    if row is None:
        raise NotFound("request")
    return RequestToBook(LockedRequest(row[0], row[1], row[2]), row[3])


@dataclass(frozen=True)
class ClaimedSlot:
    id: uuid.UUID
    external_id: str
    start_at: datetime
    end_at: datetime
    modality: str
    practitioner_id: uuid.UUID
    site_id: uuid.UUID
    family_name: str
    given_name: str
    profession: str
    specialty: str | None
    practitioner_phone: str | None
    site_name: str
    address: str | None
    postal_code: str | None
    commune_insee: str
    site_phone: str | None
    latitude: float | None
    longitude: float | None
    agenda_url: str | None  # the slot on its publisher's agenda


# Never two patients in one slot (docs/domain-rules.md): one conditional UPDATE of an offerable slot
# (`slots.predicates`); zero rows means someone else has it. The same statement expires any booking
# still recorded as holding the slot (its hold lapsed, or the slot moved), inserts ours, and answers
# what the booking's answer and notification need of the slot, its practitioner and site.
# Order inside the statement, forced by each step reading the previous:
# lock the slot's held bookings first (lock order: booking before slot, as in confirm and release,
# or a confirm of that lapsed hold and this claim could deadlock), claim the slot, expire them,
# insert ours. The partial unique indexes (one active booking per slot, one per request) are the
# last guard: a conflict there leaves `booking_id` NULL.
# `{guard}` makes the claim depend on an earlier step of the statement; `{hold_seconds}` says where
# the hold's duration comes from; `{offerable}` is the rule.
_CLAIM_STEPS = """
    held_on_slot AS (
        SELECT id FROM booking
        WHERE slot_id = :slot_id AND cpts_id = :cpts_id AND status = 'held' AND {guard}
        FOR UPDATE
    ), claimed AS (
        UPDATE slot AS s
        SET status = :status, hold_token = :hold_token,
            hold_expires_at = CASE WHEN CAST(:hold_token AS uuid) IS NULL THEN NULL
                                   ELSE CAST(:now AS timestamptz) + make_interval(secs => {hold_seconds}) END
        FROM practitioner AS p, site AS st
        WHERE s.id = :slot_id AND s.cpts_id = :cpts_id AND {offerable}
          AND p.id = s.practitioner_id AND p.active AND st.id = s.site_id
          AND {guard} AND (SELECT count(*) FROM held_on_slot) >= 0
        RETURNING s.id, s.external_id, s.start_at, s.end_at, s.modality, s.practitioner_id, s.site_id,
                  p.family_name, p.given_name, p.profession, p.specialty, p.phone,
                  st.name, st.address, st.postal_code, st.commune_insee, st.phone, st.latitude, st.longitude,
                  s.agenda_url, s.hold_expires_at
    ), stale AS (
        UPDATE booking AS b SET status = 'expired', ended_at = :now
        FROM claimed
        WHERE b.id IN (SELECT id FROM held_on_slot) AND b.status = 'held'
        RETURNING b.id
    ), inserted AS (
        INSERT INTO booking (id, cpts_id, request_id, slot_id, status, reference, hold_token, hold_expires_at,
                             held_by_id, booked_at, booked_by_id, created_at)
        SELECT :booking_id, :cpts_id, :request_id, claimed.id, :status, :reference, :hold_token,
               claimed.hold_expires_at, :actor_id, :booked_at, :booked_by_id, :now
        FROM claimed
        WHERE (SELECT count(*) FROM stale) >= 0
        ON CONFLICT DO NOTHING
        RETURNING id
    )
"""
_CLAIM_ANSWER = """
    claimed.*, inserted.id AS booking_id,
    EXISTS (SELECT 1 FROM slot WHERE id = :slot_id AND cpts_id = :cpts_id) AS slot_exists
"""
_CLAIM = text(
    f"""
    WITH {_CLAIM_STEPS.format(guard="true", hold_seconds=":hold_seconds", offerable=OFFERABLE_SQL)}
    SELECT {_CLAIM_ANSWER}
    FROM (VALUES (1)) AS one LEFT JOIN claimed ON true LEFT JOIN inserted ON true
    """  # noqa: S608 - module constants, no input
)
# The usual case in one round trip: lock the request (lock order: request first) and, if its
# status allows a booking and it holds no other slot, claim. Otherwise nothing is written, and the
# caller refuses (status) or ends the other hold first (`lock_request_ending_hold`, then `claim`).
_LOCK_AND_CLAIM = text(
    f"""
    WITH locked AS (
        SELECT r.status, c.hold_ttl_seconds,
               EXISTS (SELECT 1 FROM booking AS b WHERE b.request_id = r.id AND b.status = 'held') AS holding
        FROM care_request AS r JOIN cpts AS c ON c.id = r.cpts_id
        WHERE r.id = :request_id AND r.cpts_id = :cpts_id
        FOR UPDATE OF r
    ), go AS (
        SELECT 1 FROM locked WHERE status = ANY(CAST(:bookable AS text[])) AND NOT holding
    ),
    {
        _CLAIM_STEPS.format(
            guard="EXISTS (SELECT 1 FROM go)",
            hold_seconds="(SELECT hold_ttl_seconds FROM locked)",
            offerable=OFFERABLE_SQL,
        )
    }
    SELECT locked.status, locked.holding, {_CLAIM_ANSWER}
    FROM (VALUES (1)) AS one LEFT JOIN locked ON true LEFT JOIN claimed ON true LEFT JOIN inserted ON true
    """  # noqa: S608 - module constants, no input
)
_SLOT_FIELDS = len(fields(ClaimedSlot))


@dataclass(frozen=True)
class Claim:
    slot: ClaimedSlot | None  # None: the slot cannot be taken (or does not exist: `slot_exists`)
    hold_expires_at: datetime | None
    inserted: bool  # False: a concurrent hold or booking for the same request or slot won
    slot_exists: bool  # in this CPTS, whatever its state


def _claim_of(row: Sequence[Any]) -> Claim:
    taken = row[0] is not None
    return Claim(
        slot=ClaimedSlot(*row[:_SLOT_FIELDS]) if taken else None,
        hold_expires_at=row[_SLOT_FIELDS],
        inserted=row[_SLOT_FIELDS + 1] is not None,
        slot_exists=row[_SLOT_FIELDS + 2],
    )


async def claim(session: AsyncSession, values: dict[str, Any], hold_seconds: int) -> Claim:
    """Take a free slot (or one whose hold lapsed) for the request, and record the booking: held
    for `hold_seconds` when a hold token is given, else booked. The caller holds the request's lock."""
    row = (await session.execute(_CLAIM, {**values, "hold_seconds": hold_seconds})).one()
    return _claim_of(row)


@dataclass(frozen=True)
class LockedClaim:
    request_status: str | None  # None: no such request in this CPTS
    holding: bool  # the request holds another slot: nothing was claimed
    claim: Claim


async def lock_and_claim(session: AsyncSession, values: dict[str, Any], bookable: Sequence[str]) -> LockedClaim:
    row = (await session.execute(_LOCK_AND_CLAIM, {**values, "bookable": list(bookable)})).one()
    return LockedClaim(request_status=row[0], holding=bool(row[1]), claim=_claim_of(row[2:]))


# What a confirmed booking writes besides itself, in one round trip: the orientation event and the
# request's new status, the practice-software notifications, the audit row. Each fragment belongs
# to its module (which also runs it alone); their shared parameters mean the same thing.
_RECORD_BOOKED = text(
    f"""
    WITH {log.APPEND_CTES},
    outboxed AS ({notifications.ENQUEUE_SQL}),
    sas_outboxed AS ({sas.ENQUEUE_SQL}),
    told AS ({patients.ENQUEUE_SQL}),
    audited AS ({audit.INSERT_ONE_SQL})
    SELECT id FROM logged
    """  # noqa: S608 - module constants, no input
)


async def record_booked(session: AsyncSession, *values: dict[str, Any]) -> None:
    (await session.execute(_RECORD_BOOKED, merged(*values))).one()


class Decline(StrEnum):
    """Why the single statement declined (its error's DETAIL)."""

    key_used = "key_used"  # the general path replays the key's first answer
    no_request = "no_request"
    request_status = "request_status"  # followed by ":" and the status, which does not allow a booking
    holding = "holding"  # the request holds another slot: the general path ends that hold first
    race = "race"  # a concurrent hold or booking for the same request or slot committed first
    slot_unavailable = "slot_unavailable"
    no_slot = "no_slot"
    not_confirmable = "not_confirmable"  # a confirmation the general path answers (or replays)


# The common case of a hold or a booking, as one statement run outside any explicit transaction: one
# round trip in all. The same steps as above, in the same lock order (the Idempotency-Key first, as
# `idempotency.guard` claims it before the work; then the request; then the slot), and for a
# booking the same fragments as `_RECORD_BOOKED`. Whenever a guard stops it (no such request, a
# status that does not allow it, another hold to end first, the slot taken, the key already used)
# `snp_decline()` undoes the whole statement and the caller takes the general path, which answers
# why (or replays). The key's record names the booking (`answer_of`).
def _taking_in_one(confirm: bool) -> str:
    record = (
        f""",
        {log.APPEND_CTES},
        outboxed AS ({notifications.ENQUEUE_SQL}),
        sas_outboxed AS ({sas.ENQUEUE_SQL}),
        told AS ({patients.ENQUEUE_SQL})"""
        if confirm
        else ""
    )
    steps = _CLAIM_STEPS.format(
        guard="EXISTS (SELECT 1 FROM go)",
        hold_seconds="(SELECT hold_ttl_seconds FROM locked)",
        offerable=OFFERABLE_SQL,
    )
    return f"""
    WITH key_claim AS ({idempotency.CLAIM_SQL}),
    locked AS (
        SELECT r.status, c.hold_ttl_seconds,
               EXISTS (SELECT 1 FROM booking AS b WHERE b.request_id = r.id AND b.status = 'held') AS holding
        FROM care_request AS r JOIN cpts AS c ON c.id = r.cpts_id
        WHERE r.id = :request_id AND r.cpts_id = :cpts_id
          AND (CAST(:idem_key AS text) IS NULL OR EXISTS (SELECT 1 FROM key_claim))
        FOR UPDATE OF r
    ), go AS (
        SELECT 1 FROM locked WHERE status = ANY(CAST(:bookable AS text[])) AND NOT holding
    ),
    {steps},
    audited AS ({audit.INSERT_ONE_SQL}){record}
    SELECT claimed.*, CASE WHEN inserted.id IS NULL THEN snp_decline({_DECLINE_REASON}) ELSE true END AS taken
    FROM (VALUES (1)) AS one LEFT JOIN locked ON true LEFT JOIN claimed ON true LEFT JOIN inserted ON true
    """  # noqa: S608 - module constants, no input


# Why the statement declined, checked in the order of the general path (`service.take_slot`).
_DECLINE_REASON = f"""
    CASE
        WHEN CAST(:idem_key AS text) IS NOT NULL AND NOT EXISTS (SELECT 1 FROM key_claim) THEN '{Decline.key_used}'
        WHEN locked.status IS NULL THEN '{Decline.no_request}'
        WHEN NOT locked.status = ANY(CAST(:bookable AS text[])) THEN '{Decline.request_status}:' || locked.status
        WHEN locked.holding THEN '{Decline.holding}'
        WHEN claimed.id IS NOT NULL THEN '{Decline.race}'
        WHEN EXISTS (SELECT 1 FROM slot WHERE id = :slot_id AND cpts_id = :cpts_id) THEN '{Decline.slot_unavailable}'
        ELSE '{Decline.no_slot}'
    END
"""  # noqa: S608 - module constants, no input


# Run by the driver itself: the booking is the hottest write (`db.DriverStatement`).
_TAKE_IN_ONE = {confirm: DriverStatement(text(_taking_in_one(confirm)), locks_rows=True) for confirm in (False, True)}


@dataclass(frozen=True)
class Declined:
    reason: Decline
    request_status: str | None = None  # with `Decline.request_status`


async def take_in_one_statement(
    conn: StatementConnection, values: dict[str, Any], *, confirm: bool
) -> tuple[ClaimedSlot, datetime | None] | Declined:
    """Hold or book in one statement outside any transaction (atomic by itself): the slot taken and
    the hold's expiry, or why the statement declined (it then wrote nothing)."""
    try:
        row = await fetchrow(conn, _TAKE_IN_ONE[confirm], **values)
    except asyncpg.PostgresError as exc:
        if exc.sqlstate == DECLINED:
            reason, _, status = str(getattr(exc, "detail", "") or "").partition(":")
            return Declined(Decline(reason), status or None)
        raise
    assert row is not None  # the statement always answers one row, or declines
    return ClaimedSlot(*row[:_SLOT_FIELDS]), row[_SLOT_FIELDS]


@dataclass(frozen=True)
class BookingToConfirm:
    request_id: uuid.UUID
    reference: str
    status: str
    slot: ClaimedSlot


# What a hold's confirmation reads before its statement. A booking never changes request or slot,
# so the read needs no lock: the statement then checks, under the locks, all that can change.
_BOOKING_TO_CONFIRM = DriverStatement(
    text(
        """
        SELECT b.request_id, b.reference, b.status,
               s.id, s.external_id, s.start_at, s.end_at, s.modality, s.practitioner_id, s.site_id,
               p.family_name, p.given_name, p.profession, p.specialty, p.phone,
               st.name, st.address, st.postal_code, st.commune_insee, st.phone, st.latitude, st.longitude,
               s.agenda_url
        FROM booking AS b
        JOIN slot AS s ON s.id = b.slot_id AND s.cpts_id = b.cpts_id
        JOIN practitioner AS p ON p.id = s.practitioner_id
        JOIN site AS st ON st.id = s.site_id
        WHERE b.id = :booking_id AND b.cpts_id = :cpts_id
        """
    )
)


async def booking_to_confirm(
    conn: StatementConnection, cpts_id: uuid.UUID, booking_id: uuid.UUID
) -> BookingToConfirm | None:
    row = await fetchrow(conn, _BOOKING_TO_CONFIRM, booking_id=booking_id, cpts_id=cpts_id)
    if row is None:
        return None
    return BookingToConfirm(row[0], row[1], row[2], ClaimedSlot(*row[3:]))


# A hold's confirmation as one statement run outside any transaction, in the general path's lock
# order (the Idempotency-Key, the request, the booking, the slot) and writing what it writes: the
# slot and the booking booked, then the same fragments as `_RECORD_BOOKED`. The request must still
# allow a booking, the booking still be held and the slot still held under its token (a lapsed
# hold nobody took is confirmed, as `confirm_slot` does); otherwise `snp_decline()` undoes it all
# and the general path answers why (or replays the key's first answer).
_CONFIRM_IN_ONE = DriverStatement(
    text(
        f"""
        WITH key_claim AS ({idempotency.CLAIM_SQL}),
        locked AS (
            SELECT r.status FROM care_request AS r
            WHERE r.id = :request_id AND r.cpts_id = :cpts_id
              AND (CAST(:idem_key AS text) IS NULL OR EXISTS (SELECT 1 FROM key_claim))
            FOR UPDATE OF r
        ), held AS (
            SELECT b.hold_token FROM booking AS b
            WHERE b.id = :booking_id AND b.cpts_id = :cpts_id AND b.request_id = :request_id
              AND b.status = '{BookingStatus.held.value}'
              AND EXISTS (SELECT 1 FROM locked WHERE status = ANY(CAST(:bookable AS text[])))
            FOR UPDATE
        ), confirmed_slot AS (
            UPDATE slot AS s
            SET status = '{SlotStatus.booked.value}', hold_token = NULL, hold_expires_at = NULL
            FROM held
            WHERE s.id = :slot_id AND s.cpts_id = :cpts_id AND s.status = '{SlotStatus.held.value}'
              AND s.hold_token = held.hold_token
            RETURNING s.id
        ), confirmed AS (
            UPDATE booking AS b
            SET status = '{BookingStatus.booked.value}', booked_at = :now, booked_by_id = :actor_id,
                hold_token = NULL, hold_expires_at = NULL
            FROM confirmed_slot
            WHERE b.id = :booking_id AND b.cpts_id = :cpts_id
            RETURNING b.id
        ),
        {log.APPEND_CTES},
        outboxed AS ({notifications.ENQUEUE_SQL}),
        sas_outboxed AS ({sas.ENQUEUE_SQL}),
        told AS ({patients.ENQUEUE_SQL}),
        audited AS ({audit.INSERT_ONE_SQL})
        SELECT CASE WHEN confirmed.id IS NULL THEN snp_decline('{Decline.not_confirmable}') ELSE true END
        FROM (VALUES (1)) AS one LEFT JOIN confirmed ON true
        """  # noqa: S608 - module constants, no input
    ),
    locks_rows=True,
)


async def confirm_in_one_statement(conn: StatementConnection, values: dict[str, Any]) -> bool:
    """Confirm a hold in one statement outside any transaction (atomic by itself); False when the
    statement declined (it then wrote nothing)."""
    try:
        await fetchrow(conn, _CONFIRM_IN_ONE, **values)
    except asyncpg.PostgresError as exc:
        if exc.sqlstate == DECLINED:
            return False
        raise
    return True


async def request_has_active_booking(session: AsyncSession, cpts_id: uuid.UUID, request_id: uuid.UUID) -> bool:
    query = scoped(Booking, cpts_id).where(
        Booking.request_id == request_id, Booking.status.in_([s.value for s in ACTIVE])
    )
    return (await session.scalar(query.limit(1))) is not None


_SITE_AND_PRACTITIONER = text(
    """
    SELECT s.id, s.external_id, s.start_at, s.end_at, s.modality, s.practitioner_id, s.site_id,
           p.family_name, p.given_name, p.profession, p.specialty, p.phone,
           st.name, st.address, st.postal_code, st.commune_insee, st.phone, st.latitude, st.longitude, s.agenda_url
    FROM slot s JOIN practitioner p ON p.id = s.practitioner_id JOIN site st ON st.id = s.site_id
    WHERE s.id = :slot_id AND s.cpts_id = :cpts_id
    """
)


async def slot_details(session: AsyncSession, cpts_id: uuid.UUID, slot_id: uuid.UUID) -> ClaimedSlot:
    row = (await session.execute(_SITE_AND_PRACTITIONER, {"slot_id": slot_id, "cpts_id": cpts_id})).one()
    return ClaimedSlot(*row)
