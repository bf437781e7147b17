"""Imports every table so that `Base.metadata` is complete (Alembic, tests)."""

from service.accounts.models import ClientPractitioner, LoginThrottle, SoftwareClient, StaffUser
from service.audit.models import AuditEvent
from service.bookings.models import Booking
from service.compensation.models import CompensationRate
from service.cpts.models import Cpts
from service.db import Base
from service.idempotency import IdempotencyRecord
from service.notifications.models import DeliveryAttempt, OutboxMessage
from service.orientation.models import CareRequest, OrientationEvent
from service.practitioners.models import Practitioner, Site
from service.slots.models import Slot

__all__ = [
    "AuditEvent",
    "Base",
    "Booking",
    "CareRequest",
    "ClientPractitioner",
    "CompensationRate",
    "Cpts",
    "DeliveryAttempt",
    "IdempotencyRecord",
    "LoginThrottle",
    "OrientationEvent",
    "OutboxMessage",
    "Practitioner",
    "Site",
    "Slot",
    "SoftwareClient",
    "StaffUser",
]
