"""Webhook rules: signatures and retry schedule. Pure functions."""

from __future__ import annotations

import hashlib
import hmac
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

SIGNATURE_HEADER = "X-SNP-Signature"
EVENT_ID_HEADER = "X-SNP-Event-Id"
EVENT_TYPE_HEADER = "X-SNP-Event-Type"
_JITTER = random.Random()  # noqa: S311 - jitter, not security


class EventType(StrEnum):
    booking_confirmed = "booking.confirmed"
    booking_cancelled = "booking.cancelled"
    # For the SAS only: the appointment took place, or the patient did not come.
    booking_outcome = "booking.outcome"


class MessageStatus(StrEnum):
    pending = "pending"  # to be delivered (now or after a backoff)
    delivered = "delivered"
    dead = "dead"  # gave up after the last attempt; a coordinator may redeliver
    feed_only = "feed_only"  # the client has no webhook URL: the feed carries it
    # Not sent: the client was deactivated, lost its webhook URL, or no longer serves the
    # practitioner. Settled, so that it holds no relay up; a coordinator may redeliver it.
    skipped = "skipped"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`: the timestamp is signed with the body."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base: timedelta = timedelta(seconds=2)
    maximum: timedelta = timedelta(hours=1)

    def delay(self, attempt: int, rng: random.Random | None = None) -> timedelta:
        """Exponential backoff with jitter: base x 2^(attempt-1), capped, then scaled by a random
        factor in [0.5, 1] so that failing receivers are not hit in lockstep."""
        doubling: int = 2 ** max(0, attempt - 1)
        capped = min(self.maximum, self.base * doubling)
        return capped * (rng or _JITTER).uniform(0.5, 1.0)

    def after_failure(self, attempt: int, now: datetime, rng: random.Random | None = None) -> datetime | None:
        """When to try again after a failed `attempt`, or None when it was the last."""
        if attempt >= self.max_attempts:
            return None
        return now + self.delay(attempt, rng)
