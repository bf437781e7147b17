from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from service.fields import InputModel

CancelSide = Literal["patient", "practitioner", "handler"]


class SlotChoice(InputModel):
    slot_id: uuid.UUID


class CancelIn(InputModel):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    cancelled_by: CancelSide = Field(description="Who cancels: the patient, the practitioner, or the handler")


class OutcomeIn(InputModel):
    outcome: Literal["fulfilled", "noshow"]
