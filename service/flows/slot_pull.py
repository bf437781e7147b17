"""Pulling a FHIR source: the slots an agenda editor serves the SAS become the software client's
slots here, as if it had published them (`slots.service.sync` over the pulled window: created,
updated, a slot gone from the editor withdrawn, a held or booked one never moved and shown as a
conflict). Spans connectors (the source and its status), practitioners (national ids, places)
and slots (the sync rules).

One pull: for the client's practitioners, 25 national ids at a time, `GET {base}/Slot` with the
SAS's parameters, following `next` links; each Bundle read by `connectors.fhir_slots` (a malformed
entry is skipped and reported); each slot's place matched to one of the practitioner's sites by
address (or created, flagged for the coordinator's review); then one sync in one transaction.
A fault (timeout, TLS, HTTP status, an OperationOutcome, a Bundle that is not one) changes no
slot, is recorded on the source and delays its next pull (`connectors.domain.next_pull`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog
from cryptography.fernet import InvalidToken
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service import destinations
from service.accounts.domain import Role
from service.accounts.models import ClientPractitioner, SoftwareClient
from service.auth import Principal
from service.clock import utc_now
from service.config import Settings, webhook_policy
from service.connectors import service as sources
from service.connectors.domain import in_groups
from service.connectors.fhir_slots import (
    Flow,
    PulledLocation,
    PulledSlot,
    Skipped,
    UnreadableBundle,
    read_bundle,
    search_query,
)
from service.connectors.models import FhirSource
from service.connectors.schemas import PullError, PullResult
from service.cpts.models import Cpts
from service.db import session_scope
from service.destinations import WebhookPolicy
from service.practitioners.models import Practitioner, Site
from service.reference import communes
from service.slots import service as slots

_log = structlog.get_logger("service.flows.slot_pull")
TIMEOUT = httpx.Timeout(20.0, connect=5.0)
MAX_PAGES = 40  # per query: a server that pages forever is a fault, not a pull
MAX_PROBLEMS = 50


class PullFailed(Exception):
    def __init__(self, kind: str, detail: str, element: str | None = None) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail, self.element = kind, detail, element


@dataclass(frozen=True)
class Editor:
    """How to reach the source (read once per pull, secrets decrypted)."""

    base_url: str
    flow: Flow
    bearer_token: str | None
    client_cert: str | None
    client_key: str | None


async def pull_due(
    sessionmaker: async_sessionmaker[AsyncSession],
    secret_key: str,
    policy: WebhookPolicy,
    now: Callable[[], datetime],
    only: uuid.UUID | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[uuid.UUID, PullResult | PullError]:
    """Pull every due source (or the one given), each on its own: one source's failure or slowness
    never delays another's (they run concurrently)."""
    async with session_scope(sessionmaker) as session:
        due = await sources.due(session, now(), only)
    results = await asyncio.gather(
        *(pull_one(sessionmaker, secret_key, policy, now, c, transport) for c in due), return_exceptions=True
    )
    pulled: dict[uuid.UUID, PullResult | PullError] = {}
    for client_id, result in zip(due, results, strict=True):
        if isinstance(result, BaseException):  # a bug or the database gone: the others still count
            _log.error("fhir_source.pull_crashed", client_id=str(client_id), error_type=type(result).__name__)
        else:
            pulled[client_id] = result
    return pulled


async def pull_one(
    sessionmaker: async_sessionmaker[AsyncSession],
    secret_key: str,
    policy: WebhookPolicy,
    now: Callable[[], datetime],
    client_id: uuid.UUID,
    transport: httpx.AsyncBaseTransport | None = None,
) -> PullResult | PullError:
    started = time.perf_counter()
    async with session_scope(sessionmaker) as session:
        source = await session.get(FhirSource, client_id)
        if source is None:
            raise LookupError("no such source")
        window_hours, slot_types = source.window_hours, frozenset(source.slot_types)
        members = await _members(session, source.cpts_id, client_id)
        try:
            editor = Editor(source.base_url, Flow(source.flow), **sources.secrets_of(source, secret_key))
        except InvalidToken:
            editor = None  # stored under a previous SNP_SECRET_KEY
    at = now()
    window = (at, at + timedelta(hours=window_hours))
    try:
        if editor is None:
            raise PullFailed("credentials", "the credentials were stored under another SNP_SECRET_KEY: set them again")
        pulled, skipped, ignored, queries = await _fetch(editor, policy, list(members), window, slot_types, transport)
    except PullFailed as fault:
        error = PullError(at=at, kind=fault.kind, detail=fault.detail[:500], element=fault.element)
        async with session_scope(sessionmaker) as session:
            source = await session.get(FhirSource, client_id, with_for_update=True)
            if source is not None:
                sources.record_failure(source, error, now())
        _log.warning("fhir_source.pull_failed", client_id=str(client_id), kind=fault.kind)
        return error
    async with session_scope(sessionmaker) as session:
        result = await _apply(session, client_id, members, pulled, skipped, ignored, queries, window, at)
        result = result.model_copy(update={"duration_ms": round((time.perf_counter() - started) * 1000)})
        source = await session.get(FhirSource, client_id, with_for_update=True)
        if source is not None:
            sources.record_success(source, result, now())
    _log.info("fhir_source.pulled", client_id=str(client_id), **result.model_dump(exclude={"problems", "at"}))
    return result


async def _members(session: AsyncSession, cpts_id: uuid.UUID, client_id: uuid.UUID) -> dict[str, Practitioner]:
    """The client's active practitioners, by national id (IDNPS)."""
    rows = await session.scalars(
        select(Practitioner)
        .join(ClientPractitioner, ClientPractitioner.practitioner_id == Practitioner.id)
        .where(ClientPractitioner.client_id == client_id, Practitioner.cpts_id == cpts_id, Practitioner.active)
    )
    return {p.idnps: p for p in rows}


async def _fetch(
    editor: Editor,
    policy: WebhookPolicy,
    idnps: list[str],
    window: tuple[datetime, datetime],
    slot_types: frozenset[str],
    transport: httpx.AsyncBaseTransport | None,
) -> tuple[list[PulledSlot], list[Skipped], int, int]:
    url = f"{editor.base_url}/Slot"
    try:
        await destinations.check(url, policy)
    except destinations.RefusedDestination as exc:
        raise PullFailed("refused_url", str(exc)) from exc
    headers = {"Accept": "application/fhir+json"}
    if editor.bearer_token:
        headers["Authorization"] = f"Bearer {editor.bearer_token}"
    pulled: list[PulledSlot] = []
    skipped: list[Skipped] = []
    ignored = queries = 0
    with _Tls(editor) as verify:
        async with httpx.AsyncClient(timeout=TIMEOUT, headers=headers, verify=verify, transport=transport) as http:
            for group in in_groups(sorted(idnps)):
                next_url: str | None = url
                params: list[tuple[str, str]] | None = search_query(editor.flow, group, *window)
                for _ in range(MAX_PAGES):
                    if next_url is None:
                        break
                    bundle = await _get(http, next_url, params)
                    queries += 1
                    try:
                        page = read_bundle(bundle, editor.flow, slot_types)
                    except UnreadableBundle as exc:
                        kind = "operation_outcome" if exc.element == "OperationOutcome" else "bundle"
                        raise PullFailed(kind, exc.problem, exc.element) from exc
                    pulled += page.slots
                    skipped += page.skipped
                    ignored += page.ignored
                    next_url, params = page.next_url, None
                    if next_url is not None:
                        await _same_origin(next_url, url, policy)
    return pulled, skipped, ignored, queries


async def _get(http: httpx.AsyncClient, url: str, params: list[tuple[str, str]] | None) -> Any:
    try:
        answer = await http.get(url, params=httpx.QueryParams(tuple(params)) if params else None)
    except httpx.TimeoutException as exc:
        raise PullFailed("timeout", f"no answer within {TIMEOUT.read:g} s") from exc
    except httpx.ConnectError as exc:
        kind = "tls" if isinstance(exc.__cause__, ssl.SSLError) or "SSL" in str(exc) else "connection"
        raise PullFailed(kind, type(exc).__name__ if kind == "connection" else "TLS handshake failed") from exc
    except httpx.HTTPError as exc:
        raise PullFailed("connection", type(exc).__name__) from exc
    try:
        body = answer.json()
    except ValueError:
        body = None
    if answer.status_code != 200:
        if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
            try:
                read_bundle(body, Flow.INT_R01)
            except UnreadableBundle as exc:
                raise PullFailed("operation_outcome", f"HTTP {answer.status_code}: {exc.problem}") from exc
        raise PullFailed("http_status", f"HTTP {answer.status_code}")
    if body is None:
        raise PullFailed("bundle", "the answer is not JSON", "Bundle")
    return body


async def _same_origin(next_url: str, base: str, policy: WebhookPolicy) -> None:
    """A `next` link is followed only on the source's own server (and checked like it)."""
    if httpx.URL(next_url).netloc != httpx.URL(base).netloc:
        raise PullFailed("bundle", "a next link to another server", "Bundle.link")
    try:
        await destinations.check(next_url, policy)
    except destinations.RefusedDestination as exc:
        raise PullFailed("refused_url", str(exc)) from exc


class _Tls:
    """The SSL context of a pull: the system's trust, and the editor's client certificate when
    it gives one (written to a private temporary file for the time of the pull only)."""

    def __init__(self, editor: Editor) -> None:
        self.editor = editor
        self.folder: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> ssl.SSLContext | bool:
        if not self.editor.client_cert or not self.editor.client_key:
            return True
        self.folder = tempfile.TemporaryDirectory()
        cert, key = os.path.join(self.folder.name, "cert.pem"), os.path.join(self.folder.name, "key.pem")
        for path, text in ((cert, self.editor.client_cert), (key, self.editor.client_key)):
            with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w", encoding="ascii") as handle:
                handle.write(text)
        context = ssl.create_default_context()
        try:
            context.load_cert_chain(cert, key)
        except ssl.SSLError as exc:
            raise PullFailed("tls", "the client certificate or key cannot be used") from exc
        return context

    def __exit__(self, *_: object) -> None:
        if self.folder is not None:
            self.folder.cleanup()


async def _apply(
    session: AsyncSession,
    client_id: uuid.UUID,
    members: dict[str, Practitioner],
    pulled: list[PulledSlot],
    skipped: list[Skipped],
    ignored: int,
    queries: int,
    window: tuple[datetime, datetime],
    at: datetime,
) -> PullResult:
    client = await session.get(SoftwareClient, client_id)
    if client is None:
        raise LookupError("no such client")
    cpts = await session.get(Cpts, client.cpts_id)
    assert cpts is not None
    problems: list[dict[str, Any]] = [{"entry": s.entry, "element": s.element, "problem": s.problem} for s in skipped]
    sites = await _sites(session, client.cpts_id, [m.id for m in members.values()])
    created_sites = 0
    items: list[dict[str, Any]] = []
    # A Slot served twice (pages or queries that overlap, an editor that ignores the national ids
    # asked) is one slot, not a duplicate to refuse.
    for slot in {slot.editor_slot_id: slot for slot in pulled}.values():
        practitioner = members.get(slot.idnps)
        if practitioner is None:
            problems.append({"entry": f"Slot/{slot.editor_slot_id}", "element": "Practitioner.identifier",
                             "problem": "not one of this client's practitioners"})  # fmt: skip
            continue
        site = _matching_site(sites.get(practitioner.id, []), slot.location)
        if site is None:
            site = _new_site(client.cpts_id, practitioner, slot.location)
            if site is None:
                problems.append({"entry": f"Slot/{slot.editor_slot_id}", "element": "Location.address",
                                 "problem": "no commune for this postal code and city"})  # fmt: skip
                continue
            session.add(site)
            sites.setdefault(practitioner.id, []).append(site)
            created_sites += 1
        items.append(
            {
                "external_id": slot.editor_slot_id,
                "practitioner_id": practitioner.id,
                "site_id": site.id,
                "start": slot.start,
                "end": slot.end,
                "modality": slot.modality,
                "visibility": sorted(slot.visibility),
                "specialty": slot.specialty,
                "agenda_url": slot.agenda_url,
            }
        )
    await session.flush()
    principal = Principal(
        kind="client",
        id=client.id,
        cpts_id=client.cpts_id,
        role=Role.software,
        timezone=cpts.timezone,
        practitioner_ids=frozenset(m.id for m in members.values()),
    )
    synced = await slots.sync(session, principal, window, items, at)
    outcomes = {"created": 0, "updated": 0, "unchanged": 0, "rejected": 0}
    for item in synced.results:
        outcomes[item.outcome.value] += 1
        if item.problem is not None:
            problems.append({"entry": f"Slot/{item.external_id}", "element": "Slot", "problem": item.problem.detail})
    return PullResult(
        at=at,
        duration_ms=0,
        queries=queries,
        withdrawn=len(synced.withdrawn),
        conflicts=len(synced.conflicts),
        skipped=len(skipped),
        ignored=ignored,
        sites_created=created_sites,
        problems=problems[:MAX_PROBLEMS],
        **outcomes,
    )


async def _sites(
    session: AsyncSession, cpts_id: uuid.UUID, practitioner_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[Site]]:
    rows = await session.scalars(
        select(Site)
        .where(Site.cpts_id == cpts_id, Site.practitioner_id.in_(practitioner_ids))
        .order_by(Site.created_at)
    )
    found: dict[uuid.UUID, list[Site]] = {}
    for site in rows:
        found.setdefault(site.practitioner_id, []).append(site)
    return found


def _matching_site(sites: list[Site], location: PulledLocation) -> Site | None:
    """The practitioner's site at this address: the same street address (compared as the commune
    search compares names) in the same commune, or the only site when the editor gives no address."""
    place = communes.of_address(location.postal_code, location.city)
    for site in sites:
        same_commune = place is None or site.commune_insee == place.code
        if (
            same_commune
            and location.address
            and site.address
            and communes.normalise(site.address) == communes.normalise(location.address)
        ):
            return site
    if not location.address and len(sites) == 1:
        return sites[0]
    return None


def _new_site(cpts_id: uuid.UUID, practitioner: Practitioner, location: PulledLocation) -> Site | None:
    place = communes.of_address(location.postal_code, location.city)
    if place is None:
        return None
    return Site(
        id=uuid.uuid4(),
        cpts_id=cpts_id,
        practitioner_id=practitioner.id,
        name=f"{place.name} - {location.address or 'cabinet'}"[:200],
        address=location.address,
        postal_code=location.postal_code,
        commune_insee=place.code,
        latitude=place.point[0] if place.point else None,
        longitude=place.point[1] if place.point else None,
        home_visit_communes=[],
        needs_review=True,
    )


POLL_SECONDS = 15.0  # how often `run_forever` looks for due sources


async def run_forever(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, stop: asyncio.Event) -> None:
    """Pull the due sources until `stop` (inside `snp serve` like the relay, or `snp pull-slots`).
    A pull that fails is recorded on its source; an error of the loop itself is logged and the
    loop goes on."""
    secret, policy = settings.secret_key.get_secret_value(), webhook_policy(settings)
    while not stop.is_set():
        try:
            await pull_due(sessionmaker, secret, policy, utc_now)
        except Exception:  # noqa: BLE001 - the loop outlives any one round (database restarting...)
            _log.exception("fhir_source.round_failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), POLL_SECONDS)
