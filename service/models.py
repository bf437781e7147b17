"""Imports every table so that `Base.metadata` is complete (Alembic, tests)."""

from service.accounts.models import ClientPractitioner, SoftwareClient, StaffUser
from service.cpts.models import Cpts
from service.db import Base
from service.idempotency import IdempotencyRecord
from service.practitioners.models import Practitioner, Site
from service.slots.models import Slot

__all__ = [
    "Base",
    "ClientPractitioner",
    "Cpts",
    "IdempotencyRecord",
    "Practitioner",
    "Site",
    "Slot",
    "SoftwareClient",
    "StaffUser",
]
