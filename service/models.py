"""Imports every table so that `Base.metadata` is complete (Alembic, tests)."""

from service.accounts.models import (
    ClientPractitioner,
    LoginThrottle,
    SasClient,
    SasRegulator,
    SoftwareClient,
    StaffUser,
)
from service.audit.models import AuditEvent
from service.bookings.models import Booking
from service.compensation.models import CompensationRate
from service.connectors.models import FhirSource
from service.cpts.models import Cpts, CptsTarget
from service.db import Base
from service.idempotency import IdempotencyRecord
from service.notifications.models import DeliveryAttempt, OutboxMessage, PatientMessage
from service.orientation.models import Callback, CareRequest, OrientationEvent, RequestNote
from service.practitioners.models import Practitioner, Site
from service.slots.models import Slot

__all__ = [
    "AuditEvent",
    "Base",
    "Booking",
    "Callback",
    "CareRequest",
    "ClientPractitioner",
    "CompensationRate",
    "Cpts",
    "CptsTarget",
    "DeliveryAttempt",
    "FhirSource",
    "IdempotencyRecord",
    "LoginThrottle",
    "OrientationEvent",
    "OutboxMessage",
    "PatientMessage",
    "Practitioner",
    "RequestNote",
    "SasClient",
    "SasRegulator",
    "Site",
    "Slot",
    "SoftwareClient",
    "StaffUser",
]
