from __future__ import annotations

import re
import uuid
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, SkipValidation, StringConstraints, field_validator

from service.batches import ItemProblemOut
from service.fields import InputModel, InseeCode, LocalDatetime, PlausibleDatetime
from service.practitioners.domain import place
from service.slots.domain import DEFAULT_VISIBILITY, Modality, Outcome, SlotStatus, Visibility

MAX_BATCH = 1000

# The publisher's own id for a slot: safe in a URL path segment ("." and ".." are not: a path
# segment that a client or proxy would resolve).
EXTERNAL_ID_PATTERN = r"^[A-Za-z0-9._:~@+=-]{1,128}$"
EXTERNAL_ID = re.compile(r"^(?!\.{1,2}$)[A-Za-z0-9._:~@+=-]{1,128}$")


def _not_a_dot_segment(value: str) -> str:
    if value in (".", ".."):
        raise ValueError("'.' and '..' are not external ids")
    return value


AgendaUrl = Annotated[str, StringConstraints(pattern=r"^https?://[^\s\x00-\x1f]+$", max_length=2000)]
ExternalId = Annotated[str, StringConstraints(pattern=EXTERNAL_ID_PATTERN), AfterValidator(_not_a_dot_segment)]


class SlotBody(InputModel):
    """A slot as a publisher describes it. Datetimes must carry their offset."""

    practitioner_id: uuid.UUID
    site_id: uuid.UUID
    start: PlausibleDatetime
    end: PlausibleDatetime
    modality: Modality = Modality.AMB
    visibility: list[Visibility] = Field(default_factory=lambda: list(DEFAULT_VISIBILITY), min_length=1, max_length=4)
    specialty: str | None = Field(
        default=None, pattern=r"^SM\d{2}$", description="TRE_R38; defaults to the practitioner's specialty"
    )
    home_visit_communes: list[InseeCode] | None = Field(
        default=None, max_length=500, description="For HH slots; defaults to the site's home-visit communes"
    )
    agenda_url: AgendaUrl | None = Field(
        default=None, description="The slot on the publisher's own agenda; bookings carry it back"
    )

    @field_validator("visibility")
    @classmethod
    def _distinct(cls, value: list[Visibility]) -> list[Visibility]:
        return sorted(set(value))


class SlotItem(SlotBody):
    external_id: ExternalId


class SlotPut(SlotBody):
    """A slot put at its external id; a body of the batch item's shape may repeat the id."""

    external_id: ExternalId | None = Field(default=None, description="If given, the same as in the path")


class SlotOut(BaseModel):
    id: uuid.UUID
    external_id: str
    client_id: uuid.UUID | None
    practitioner_id: uuid.UUID
    site_id: uuid.UUID
    start: LocalDatetime
    end: LocalDatetime
    modality: Modality
    visibility: list[Visibility]
    specialty: str | None
    home_visit_communes: list[str]
    agenda_url: str | None
    status: SlotStatus = Field(description="An expired hold reads as free")
    version: int
    published_at: LocalDatetime
    updated_at: LocalDatetime


class SlotPublished(SlotOut):
    outcome: Outcome


class ItemResult(BaseModel):
    external_id: str | None
    outcome: Outcome
    slot_id: uuid.UUID | None = None
    version: int | None = None
    problem: ItemProblemOut | None = None


class BatchIn(InputModel):
    # Items are validated one by one, so that one bad item does not reject the others.
    items_validated_alone = frozenset({"slots"})
    slots: list[SkipValidation[SlotItem]] = Field(max_length=MAX_BATCH, description=f"At most {MAX_BATCH} slots")


class BatchOut(BaseModel):
    results: list[ItemResult]


class SyncIn(BatchIn):
    window_start: PlausibleDatetime
    window_end: PlausibleDatetime


class SlotRef(BaseModel):
    external_id: str
    slot_id: uuid.UUID
    status: SlotStatus | None = None
    problem: ItemProblemOut | None = None


class SyncOut(BaseModel):
    results: list[ItemResult]
    withdrawn: list[SlotRef] = Field(description="Free slots of the window absent from the list")
    conflicts: list[SlotRef] = Field(description="Held or booked slots absent from the list: left as they are")


class PractitionerSummary(BaseModel):
    id: uuid.UUID
    family_name: str
    given_name: str
    profession: str
    specialty: str | None
    phone: str | None


class SiteSummary(BaseModel):
    id: uuid.UUID
    name: str
    address: str | None
    postal_code: str | None
    commune_insee: str
    commune_name: str | None
    full_address: str = Field(description="What is read to the patient: street, postal code and commune")
    phone: str | None = Field(description="The practice's number (else see the practitioner's)")
    latitude: float | None
    longitude: float | None

    @classmethod
    def of(
        cls,
        *,
        id: uuid.UUID,
        name: str,
        address: str | None,
        postal_code: str | None,
        commune_insee: str,
        phone: str | None,
        latitude: float | None,
        longitude: float | None,
    ) -> SiteSummary:
        """The site with its address completed for reading out (`practitioners.domain.place`)."""
        where = place(address, postal_code, commune_insee)
        return cls(
            id=id,
            name=name,
            address=address,
            postal_code=where.postal_code,
            commune_insee=commune_insee,
            commune_name=where.commune_name,
            full_address=where.full_address,
            phone=phone,
            latitude=latitude,
            longitude=longitude,
        )


class SlotFound(BaseModel):
    id: uuid.UUID
    start: LocalDatetime
    end: LocalDatetime
    modality: Modality
    specialty: str | None
    visibility: list[Visibility]
    home_visit_communes: list[str]
    agenda_url: str | None = Field(description="The slot on its publisher's agenda (a link for people, never fetched)")
    practitioner: PractitionerSummary
    site: SiteSummary


StatusFilter = Literal["free", "held", "booked", "withdrawn"]
