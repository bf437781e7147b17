"""`Idempotency-Key` on POST: the same key with the same body replays the first answer; the same
key with another body is a 422.

The key is claimed with an INSERT in the request's own transaction, before the work, and the answer
is stored in that transaction before it commits. A concurrent duplicate therefore waits on the
unique index until the first one commits, then replays its answer; if the first one fails, it
rolled back its claim too and the duplicate simply runs. Only successful answers are stored: a
failed attempt changed nothing and may be retried with the same key.

The booking (hold, book) claims its key inside its own single statement (`CLAIM_SQL`, see
`bookings.repository`): the record then names the booking (`answer_of`) instead of holding the
encrypted answer, and a replay renders that booking again. A new request's single statement
(`orientation.repository`) stores its encrypted answer with the claim: a replay gives that first
answer, whatever the request became since.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from cryptography.fernet import Fernet, InvalidToken
from fastapi import Depends, Header, Request, Response
from sqlalchemy import Index, LargeBinary, SmallInteger, String, delete, select, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from service.auth import CurrentPrincipal, Principal
from service.db import Base, SessionDep, created_at_column
from service.errors import Conflict, Invalid

REPLAY_HEADER = "Idempotent-Replayed"
# The hx-* headers: a replayed console answer navigates or targets as the first one did.
_STORED_HEADERS = ("location", "content-type", "hx-redirect", "hx-retarget", "hx-reswap")


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_record"
    __table_args__ = (Index("ix_idempotency_record_created_at", "created_at"),)

    principal_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    cpts_id: Mapped[uuid.UUID]
    request_digest: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(SmallInteger)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    response_headers: Mapped[dict[str, str] | None] = mapped_column(JSONB)
    answer_of: Mapped[uuid.UUID | None]  # the booking a replay renders again (no stored body)
    created_at: Mapped[datetime] = created_at_column()


@dataclass(frozen=True)
class Claim:
    principal_id: uuid.UUID
    key: str


@dataclass(frozen=True)
class Pending:
    """A key not claimed yet: the route claims it in its own statement (`CLAIM_SQL`)."""

    key: str
    digest: str


# The key's claim as a step of a single statement, with the answer already known: the record names
# it (`answer_of`) or holds it (`idem_body`, encrypted). It runs first and the statement's work waits
# on it: a concurrent duplicate waits here for the first to commit, finds the key taken, and does
# nothing (it is then answered by `guard`, which replays). `:idem_key` NULL: no key, nothing claimed.
CLAIM_SQL = """
    INSERT INTO idempotency_record (principal_id, key, cpts_id, request_digest, status_code, response_body,
                                    response_headers, answer_of, created_at)
    SELECT CAST(:idem_principal_id AS uuid), CAST(:idem_key AS text), CAST(:cpts_id AS uuid),
           CAST(:idem_digest AS text), CAST(:idem_status_code AS integer), CAST(:idem_body AS bytea),
           CAST(:idem_headers AS jsonb), CAST(:idem_answer_of AS uuid), CAST(:now AS timestamptz)
    WHERE CAST(:idem_key AS text) IS NOT NULL
    ON CONFLICT DO NOTHING
    RETURNING key
"""


def claim_values(
    principal: Principal,
    pending: Pending | None,
    status_code: int,
    *,
    answer_of: uuid.UUID | None = None,
    body: bytes | None = None,
) -> dict[str, Any]:
    """The parameters of `CLAIM_SQL` (those of no key when `pending` is None): an answer named by
    `answer_of`, or `body` (already encrypted, `response_cipher`) replayed as it is."""
    return {
        "idem_principal_id": principal.id,
        "idem_key": pending.key if pending else None,
        "idem_digest": pending.digest if pending else None,
        "idem_status_code": status_code,
        "idem_body": body if pending else None,
        "idem_headers": json.dumps({"content-type": "application/json"}),
        "idem_answer_of": answer_of,
    }


class IdempotentReplay(Exception):
    def __init__(self, record: IdempotencyRecord, body: bytes) -> None:
        super().__init__("idempotent replay")
        # Copied now: the record is expired by the rollback that precedes the replay.
        self.status_code = record.status_code or 200
        self.headers = {**(record.response_headers or {}), REPLAY_HEADER: "true"}
        self.body = body

    def response(self) -> Response:
        return Response(content=self.body, status_code=self.status_code, headers=self.headers)


def response_cipher(secret: str) -> Fernet:
    """Stored answers can hold a new API key or patient data: they are kept encrypted."""
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"snp-idempotency:" + secret.encode()).digest()))


def request_digest(method: str, path: str, body: bytes) -> str:
    """Digest of what the request asks: JSON bodies are compared by meaning, not by spacing."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode() if body else b""
    except (ValueError, UnicodeDecodeError):
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Retry-safe key: the same key and body replay the first answer.",
    ),
]


async def idempotency_guard(
    request: Request, principal: CurrentPrincipal, session: SessionDep, idempotency_key: IdempotencyKey = None
) -> None:
    await guard(request, principal, session, idempotency_key)


async def pending_idempotency(request: Request, idempotency_key: IdempotencyKey = None) -> Pending | None:
    """The key of a route that claims it in its own statement, with the digest of what it asks."""
    if idempotency_key is None:
        return None
    return Pending(idempotency_key, request_digest(request.method, request.url.path, await request.body()))


PendingKey = Annotated[Pending | None, Depends(pending_idempotency)]
Rerender = Callable[[uuid.UUID], Awaitable[bytes | None]]


async def guard(
    request: Request,
    principal: Principal,
    session: AsyncSession,
    idempotency_key: str | None,
    body: bytes | None = None,
    *,
    digest: str | None = None,
    rerender: Rerender | None = None,
) -> None:
    """Claim the key for this request, or replay the answer of the request that claimed it (raises
    `IdempotentReplay`). The console calls it with its own principal (from the session cookie) and
    the form it already parsed as `body`; the booking with the digest it computed (`Pending`) and
    how to render again the booking a record names."""
    if idempotency_key is None:
        return
    if digest is None:
        digest = request_digest(request.method, request.url.path, await request.body() if body is None else body)
    claimed = await session.scalar(
        insert(IdempotencyRecord)
        .values(principal_id=principal.id, key=idempotency_key, cpts_id=principal.cpts_id, request_digest=digest)
        .on_conflict_do_nothing()
        .returning(IdempotencyRecord.key)
    )
    if claimed is not None:
        request.state.idempotency_claim = Claim(principal.id, idempotency_key)
        return
    # The key is taken: the first request with it has committed (we waited for it).
    record = await session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.principal_id == principal.id, IdempotencyRecord.key == idempotency_key
        )
    )
    if record is None or record.status_code is None:
        return  # purged meanwhile: run without a claim
    if record.request_digest != digest:
        raise Invalid(
            "idempotency_key_reused", "This Idempotency-Key was already used with another request; use a new key."
        )
    if record.answer_of is not None:
        rendered = await rerender(record.answer_of) if rerender is not None else None
        if rendered is None:
            raise Conflict(
                "idempotency_record_unreadable", "The first answer to this key cannot be replayed; use a new key."
            )
        raise IdempotentReplay(record, rendered)
    try:
        body = request.app.state.response_cipher.decrypt(record.response_body or b"")
    except InvalidToken as exc:  # stored under a previous SNP_SECRET_KEY
        raise Conflict(
            "idempotency_record_unreadable", "The first answer to this key cannot be replayed; use a new key."
        ) from exc
    raise IdempotentReplay(record, body)


Idempotent = Depends(idempotency_guard)


async def store_response(session: AsyncSession, cipher: Fernet, claim: Claim, response: Response) -> None:
    body: Any = getattr(response, "body", None)
    if not isinstance(body, bytes | memoryview):
        # A streamed answer cannot be replayed; forget the claim rather than replay something else.
        await session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.principal_id == claim.principal_id, IdempotencyRecord.key == claim.key
            )
        )
        return
    headers = {k: v for k, v in response.headers.items() if k.lower() in _STORED_HEADERS}
    await session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.principal_id == claim.principal_id, IdempotencyRecord.key == claim.key)
        .values(status_code=response.status_code, response_body=cipher.encrypt(bytes(body)), response_headers=headers)
    )


async def purge_before(session: AsyncSession, before: datetime) -> int:
    result = await session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < before))
    return int(getattr(result, "rowcount", 0) or 0)
