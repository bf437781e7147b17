"""The orientation rules SQL applies, built from the constants of the Python rules
(`orientation.domain`); parity test: tests/integration/test_predicates.py."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, case, column, func, or_, table
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import String, Text

from service.db import sql_fragment
from service.orientation.domain import RequestStatus
from service.reference.codes import Classification

_R = table("r", column("red_flags", ARRAY(Text)), column("motif_classification", String))


def queue_rank(status: Any) -> ColumnElement[int]:
    """Red-flagged requests first (`domain.queue_rank`)."""
    return case((status == RequestStatus.transfer_required.value, 0), else_=1)


def requires_transfer(red_flags: Any, motif_classification: Any) -> ColumnElement[bool]:
    """A ticked red flag or a life-threatening motif: the 15 first (`domain.requires_transfer`)."""
    return or_(func.cardinality(red_flags) > 0, motif_classification == Classification.transfer_15.value)


# For the reporting facts statement (the request is aliased `r` there).
RED_FLAGGED_SQL = sql_fragment(requires_transfer(_R.c.red_flags, _R.c.motif_classification))
