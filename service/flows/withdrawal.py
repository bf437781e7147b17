"""Withdrawing a slot: the practitioner's agenda has the last word, but a booked slot is withdrawn
only on explicit request, and then its booking is cancelled on the practitioner's side, the request
reopens and the practitioner's software is told (docs/domain-rules.md, publication)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from service.auth import Principal
from service.bookings import service as bookings
from service.errors import Conflict
from service.slots import service as slots
from service.slots.domain import SlotStatus
from service.slots.models import Slot


async def withdraw(
    session: AsyncSession, principal: Principal, external_id: str, cancel_booking: bool, now: datetime
) -> Slot:
    """Lock order follows the booking paths' (request, booking, slot): the slot is read without a
    lock, the booking is dealt with first, then the slot changes by a conditional UPDATE."""
    slot, status = await slots.slot_to_withdraw(session, principal, external_id, now)
    if status is SlotStatus.withdrawn:
        return slot  # withdrawing twice changes nothing
    if status is SlotStatus.booked:
        if not cancel_booking:
            raise Conflict(
                "slot_booked", "A patient is booked in this slot; withdraw with ?cancel_booking=true to cancel it."
            )
        await bookings.cancel_for_withdrawn_slot(session, principal, slot, now)
    else:
        if status is SlotStatus.held:
            await bookings.void_hold_of_withdrawn_slot(session, slot, now)
        await slots.withdraw_unbooked(session, slot, now)
    await session.refresh(slot)
    return slot
