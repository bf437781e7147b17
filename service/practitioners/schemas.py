from __future__ import annotations

import uuid
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, model_validator

from service.fields import Email, InputModel, InseeCode, Label, LocalDatetime, Name, Phone, PostalCode
from service.practitioners.domain import profession_problem
from service.reference.codes import professions, specialties


def _known_profession(code: str) -> str:
    if code not in professions():
        raise ValueError(f"unknown profession code '{code}' (TRE_G15)")
    return code


def _known_specialty(code: str) -> str:
    if code not in specialties():
        raise ValueError(f"unknown or non-SNP specialty code '{code}' (TRE_R38)")
    return code


Rpps = Annotated[str, StringConstraints(pattern=r"^\d{11}$")]
Adeli = Annotated[str, StringConstraints(pattern=r"^(?:\d{2}|2[AB])\d{7}$")]
ProfessionCode = Annotated[str, StringConstraints(pattern=r"^\d{2}$"), AfterValidator(_known_profession)]
SpecialtyCode = Annotated[str, StringConstraints(pattern=r"^SM\d{2}$"), AfterValidator(_known_specialty)]


class SiteIn(InputModel):
    name: Label
    address: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] | None = None
    postal_code: PostalCode | None = None
    commune_insee: InseeCode
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    home_visit_communes: list[InseeCode] = Field(default_factory=list, max_length=500)
    phone: Phone | None = Field(default=None, description="The practice's number, read to the patient")

    @model_validator(mode="after")
    def _coordinates_together(self) -> Self:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude go together")
        return self


class SiteOut(BaseModel):
    id: uuid.UUID
    name: str
    address: str | None
    postal_code: str | None
    commune_insee: str
    latitude: float | None
    longitude: float | None
    home_visit_communes: list[str]
    phone: str | None
    needs_review: bool = Field(
        description="Created by a pull from the practitioner's agenda software on first sight of a place "
        "(`/v1/clients/{id}/fhir-source`): for the coordinator to check, then mark reviewed"
    )


class SitePatch(InputModel):
    """What a coordinator corrects of a place, or confirms after checking it."""

    name: Label | None = None
    phone: Phone | None = None
    needs_review: Literal[False] | None = Field(default=None, description="false: checked (only the service flags)")


class PractitionerCreate(InputModel):
    rpps: Rpps | None = Field(default=None, description="11 digits")
    adeli: Adeli | None = Field(default=None, description="9 characters, for professions without an RPPS")
    family_name: Name
    given_name: Name
    profession: ProfessionCode = Field(description="TRE_G15 code, e.g. 10 physician, 60 nurse")
    specialty: SpecialtyCode | None = Field(default=None, description="TRE_R38 code, physicians only")
    phone: Phone | None = None
    email: Email | None = None
    sites: list[SiteIn] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.rpps is None) == (self.adeli is None):
            raise ValueError("give exactly one of rpps or adeli")
        problem = profession_problem(self.profession, self.specialty)
        if problem:
            raise ValueError(problem)
        return self


class PractitionerPatch(InputModel):
    family_name: Name | None = None
    given_name: Name | None = None
    profession: ProfessionCode | None = None
    specialty: SpecialtyCode | None = None
    phone: Phone | None = None
    email: Email | None = None
    active: bool | None = None


class WarningOut(BaseModel):
    code: str
    detail: str


class PractitionerOut(BaseModel):
    id: uuid.UUID
    rpps: str | None
    adeli: str | None
    idnps: str
    family_name: str
    given_name: str
    profession: str
    specialty: str | None
    phone: str | None
    email: str | None
    active: bool
    sites: list[SiteOut]
    warnings: list[WarningOut] = Field(description="Accepted but worth checking, e.g. an RPPS check digit")
    created_at: LocalDatetime
    updated_at: LocalDatetime
