"""FHIR sources: the rules of a pull's schedule and of its secrets (pure)."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta

from cryptography.fernet import Fernet

DEFAULT_WINDOW_HOURS = 72  # the SAS's own
DEFAULT_INTERVAL_SECONDS = 300
MAX_BACKOFF_SECONDS = 3600
PRACTITIONERS_PER_QUERY = 25  # the SAS asks for 1 to 25 national ids at a time


def source_cipher(secret_key: str) -> Fernet:
    """The editor's credentials (bearer token, client certificate and key) are kept encrypted."""
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"snp-fhir-source:" + secret_key.encode()).digest()))


def next_pull(now: datetime, interval_seconds: int, failures: int) -> datetime:
    """After a success, one interval; after failures, the interval doubled for each, up to an hour
    (or the interval, when it is longer): a failing editor is not hammered, nor forgotten."""
    if failures <= 0:
        return now + timedelta(seconds=interval_seconds)
    ceiling = max(MAX_BACKOFF_SECONDS, interval_seconds)
    return now + timedelta(seconds=min(interval_seconds * 2 ** (failures - 1), ceiling))


def in_groups(values: list[str], size: int = PRACTITIONERS_PER_QUERY) -> list[list[str]]:
    return [values[i : i + size] for i in range(0, len(values), size)]
