"""Booking queries. Claiming a slot is one conditional UPDATE: zero rows means someone else has
it. No check-then-insert, no serializable retries."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.bookings.domain import BookingStatus
from service.bookings.models import Booking
from service.errors import NotFound
from service.practitioners.models import Practitioner, Site
from service.slots.domain import HANDLER_VISIBILITY, SlotStatus
from service.slots.models import Slot


async def claim_slot(
    session: AsyncSession,
    cpts_id: uuid.UUID,
    slot_id: uuid.UUID,
    now: datetime,
    *,
    hold_token: uuid.UUID | None,
    hold_expires_at: datetime | None,
) -> bool:
    """Take a free slot (or one whose hold lapsed): held when a token is given, else booked."""
    result = await session.execute(
        update(Slot)
        .where(
            Slot.id == slot_id,
            Slot.cpts_id == cpts_id,
            Slot.start_at > now,
            Slot.visibility.overlap(sorted(v.value for v in HANDLER_VISIBILITY)),
            or_(
                Slot.status == SlotStatus.free.value,
                and_(Slot.status == SlotStatus.held.value, Slot.hold_expires_at <= now),
            ),
        )
        .values(
            status=SlotStatus.held.value if hold_token else SlotStatus.booked.value,
            hold_token=hold_token,
            hold_expires_at=hold_expires_at,
        )
        .returning(Slot.id)
    )
    return result.scalar_one_or_none() is not None


async def confirm_slot(session: AsyncSession, slot_id: uuid.UUID, hold_token: uuid.UUID) -> bool:
    """Turn our hold into a booking. The token must still be ours: an expired hold nobody took
    is re-claimed here; one another handler took over (or a slot moved or withdrawn) is not."""
    result = await session.execute(
        update(Slot)
        .where(Slot.id == slot_id, Slot.status == SlotStatus.held.value, Slot.hold_token == hold_token)
        .values(status=SlotStatus.booked.value, hold_token=None, hold_expires_at=None)
        .returning(Slot.id)
    )
    return result.scalar_one_or_none() is not None


async def free_held_slot(session: AsyncSession, slot_id: uuid.UUID, hold_token: uuid.UUID | None) -> None:
    """Give the slot back, if the hold on it is still this one."""
    await session.execute(
        update(Slot)
        .where(Slot.id == slot_id, Slot.status == SlotStatus.held.value, Slot.hold_token == hold_token)
        .values(status=SlotStatus.free.value, hold_token=None, hold_expires_at=None)
    )


async def release_booked_slot(session: AsyncSession, slot_id: uuid.UUID, status: str, now: datetime) -> None:
    values: dict[str, object] = {"status": status}
    if status == SlotStatus.withdrawn.value:
        values.update(withdrawn_at=now, version=Slot.version + 1, updated_at=now)
    await session.execute(
        update(Slot).where(Slot.id == slot_id, Slot.status == SlotStatus.booked.value).values(**values)
    )


async def expire_stale_holds(session: AsyncSession, slot_id: uuid.UUID, now: datetime) -> None:
    """The slot was just taken: any hold still recorded on it had lapsed."""
    await session.execute(
        update(Booking)
        .where(Booking.slot_id == slot_id, Booking.status == BookingStatus.held.value)
        .values(status=BookingStatus.expired.value, ended_at=now)
    )


async def get(session: AsyncSession, cpts_id: uuid.UUID, booking_id: uuid.UUID, *, for_update: bool = False) -> Booking:
    query = select(Booking).where(Booking.cpts_id == cpts_id, Booking.id == booking_id)
    if for_update:
        # Re-read the row once locked: the session may hold an older copy.
        query = query.with_for_update().execution_options(populate_existing=True)
    booking = await session.scalar(query)
    if booking is None:
        raise NotFound("booking")
    return booking


async def active_hold_of_request(session: AsyncSession, request_id: uuid.UUID) -> Booking | None:
    return await session.scalar(
        select(Booking)
        .where(Booking.request_id == request_id, Booking.status == BookingStatus.held.value)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def active_of_slot(session: AsyncSession, slot_id: uuid.UUID, *, for_update: bool = False) -> Booking | None:
    query = select(Booking).where(
        Booking.slot_id == slot_id, Booking.status.in_([BookingStatus.held.value, BookingStatus.booked.value])
    )
    if for_update:
        # Re-read the row once locked: the session may hold an older copy.
        query = query.with_for_update().execution_options(populate_existing=True)
    return await session.scalar(query)


async def with_slot(
    session: AsyncSession, cpts_id: uuid.UUID, booking_id: uuid.UUID
) -> tuple[Booking, Slot, Practitioner, Site]:
    row = (
        await session.execute(
            select(Booking, Slot, Practitioner, Site)
            .join(Slot, Slot.id == Booking.slot_id)
            .join(Practitioner, Practitioner.id == Slot.practitioner_id)
            .join(Site, Site.id == Slot.site_id)
            .where(Booking.cpts_id == cpts_id, Booking.id == booking_id)
        )
    ).first()
    if row is None:
        raise NotFound("booking")
    return row[0], row[1], row[2], row[3]
