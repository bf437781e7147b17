from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.errors import Conflict, Invalid, NotFound, field_error
from service.pagination import BY_FULL_NAME, Page
from service.practitioners import repository
from service.practitioners.domain import NationalId, national_id_warnings, profession_problem
from service.practitioners.models import Practitioner, Site
from service.practitioners.schemas import (
    PractitionerCreate,
    PractitionerOut,
    PractitionerPatch,
    SiteIn,
    SiteOut,
    SitePatch,
    WarningOut,
)


async def list_members(
    session: AsyncSession,
    cpts_id: uuid.UUID,
    visible: frozenset[uuid.UUID] | None,
    *,
    profession: str | None,
    specialty: str | None,
    active: bool | None,
    limit: int,
    cursor: str | None,
) -> Page[PractitionerOut]:
    """Members of the CPTS; `visible` narrows them (a software client sees the ones it publishes for)."""
    rows = await repository.list_page(
        session,
        cpts_id,
        only=visible,
        profession=profession,
        specialty=specialty,
        active=active,
        after=BY_FULL_NAME.decode(cursor),
        limit=limit,
    )
    practitioners, next_cursor = BY_FULL_NAME.page(rows, limit, lambda p: (p.family_name, p.given_name, p.id))
    sites = await repository.sites_of(session, cpts_id, [p.id for p in practitioners])
    return Page(items=[to_out(p, sites[p.id]) for p in practitioners], next_cursor=next_cursor)


async def member(
    session: AsyncSession, cpts_id: uuid.UUID, visible: frozenset[uuid.UUID] | None, practitioner_id: uuid.UUID
) -> PractitionerOut:
    """One member; outside `visible`, it is answered like a missing one (docs/domain-rules.md)."""
    if visible is not None and practitioner_id not in visible:
        raise NotFound("practitioner")
    practitioner = await repository.get(session, cpts_id, practitioner_id)
    sites = await repository.sites_of(session, cpts_id, [practitioner.id])
    return to_out(practitioner, sites[practitioner.id])


def national_id_of(practitioner: Practitioner) -> NationalId:
    return NationalId(practitioner.id_type, practitioner.national_id)


def to_out(practitioner: Practitioner, sites: list[Site]) -> PractitionerOut:
    national_id = national_id_of(practitioner)
    return PractitionerOut(
        id=practitioner.id,
        rpps=national_id.value if national_id.id_type == "rpps" else None,
        adeli=national_id.value if national_id.id_type == "adeli" else None,
        idnps=practitioner.idnps,
        family_name=practitioner.family_name,
        given_name=practitioner.given_name,
        profession=practitioner.profession,
        specialty=practitioner.specialty,
        phone=practitioner.phone,
        email=practitioner.email,
        active=practitioner.active,
        sites=[SiteOut.model_validate(s, from_attributes=True) for s in sites],
        warnings=[WarningOut(code=w.code, detail=w.detail) for w in national_id_warnings(national_id)],
        created_at=practitioner.created_at,
        updated_at=practitioner.updated_at,
    )


def _new_site(cpts_id: uuid.UUID, practitioner_id: uuid.UUID, data: SiteIn) -> Site:
    return Site(
        id=uuid.uuid4(),
        cpts_id=cpts_id,
        practitioner_id=practitioner_id,
        name=data.name,
        address=data.address,
        postal_code=data.postal_code,
        commune_insee=data.commune_insee,
        latitude=data.latitude,
        longitude=data.longitude,
        home_visit_communes=sorted(set(data.home_visit_communes)),
        phone=data.phone,
    )


def _exists(national_id: NationalId) -> Conflict:
    return Conflict(
        "practitioner_exists", f"A practitioner with this {national_id.id_type.upper()} is already a member."
    )


async def create(
    session: AsyncSession, cpts_id: uuid.UUID, data: PractitionerCreate, now: datetime
) -> tuple[Practitioner, list[Site]]:
    national_id = NationalId("rpps", data.rpps) if data.rpps else NationalId("adeli", data.adeli or "")
    if await repository.by_idnps(session, cpts_id, national_id.idnps) is not None:
        raise _exists(national_id)
    practitioner = Practitioner(
        id=uuid.uuid4(),
        cpts_id=cpts_id,
        id_type=national_id.id_type,
        national_id=national_id.value,
        idnps=national_id.idnps,
        family_name=data.family_name,
        given_name=data.given_name,
        profession=data.profession,
        specialty=data.specialty,
        phone=data.phone,
        email=data.email,
        active=True,
        created_at=now,
        updated_at=now,
    )
    session.add(practitioner)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:  # registered concurrently
        raise _exists(national_id) from exc
    sites = [_new_site(cpts_id, practitioner.id, s) for s in data.sites]
    session.add_all(sites)
    await session.flush()
    return practitioner, sites


async def update(
    session: AsyncSession, cpts_id: uuid.UUID, practitioner_id: uuid.UUID, patch: PractitionerPatch, now: datetime
) -> PractitionerOut:
    practitioner = await repository.get(session, cpts_id, practitioner_id)
    changes = patch.model_dump(exclude_unset=True)
    profession = changes.get("profession") or practitioner.profession
    specialty = changes.get("specialty", practitioner.specialty)
    if profession != "10" and "specialty" not in changes:
        specialty = None  # a physician who is re-coded loses the physician's specialty
    problem = profession_problem(profession, specialty)
    if problem:
        raise Invalid("validation_error", problem, errors=[field_error(["body", "specialty"], problem)])
    for field in ("family_name", "given_name", "profession", "active"):
        if changes.get(field) is not None:
            setattr(practitioner, field, changes[field])
    practitioner.specialty = specialty
    for field in ("phone", "email"):
        if field in changes:
            setattr(practitioner, field, changes[field])
    practitioner.updated_at = now
    await session.flush()
    sites = await repository.sites_of(session, cpts_id, [practitioner.id])
    return to_out(practitioner, sites[practitioner.id])


async def update_site(
    session: AsyncSession, cpts_id: uuid.UUID, practitioner_id: uuid.UUID, site_id: uuid.UUID, patch: SitePatch
) -> Site:
    """Correct a place's name or phone, or mark it checked (`needs_review` false)."""
    site = await repository.site(session, cpts_id, practitioner_id, site_id)
    changes = patch.model_dump(exclude_unset=True)
    if changes.get("name") is not None:
        site.name = changes["name"]
    if "phone" in changes:
        site.phone = changes["phone"]
    if changes.get("needs_review") is False:
        site.needs_review = False
    await session.flush()
    return site


async def sites_to_review(
    session: AsyncSession, cpts_id: uuid.UUID, practitioner_ids: list[uuid.UUID]
) -> list[tuple[Site, Practitioner]]:
    """The places created by pulls that no coordinator has checked yet, with their practitioner."""
    return await repository.sites_to_review(session, cpts_id, practitioner_ids)


async def add_site(session: AsyncSession, cpts_id: uuid.UUID, practitioner_id: uuid.UUID, data: SiteIn) -> Site:
    practitioner = await repository.get(session, cpts_id, practitioner_id)
    site = _new_site(cpts_id, practitioner.id, data)
    session.add(site)
    await session.flush()
    return site
