"""`db.DriverStatement`: a statement the driver runs itself takes its parameters as given and
returns the driver's values, so what would need SQLAlchemy's conversion is refused when it is
built, and a missing parameter is an error rather than a NULL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import TypeDecorator

from service.db import DriverStatement


class Upper(TypeDecorator[str]):
    impl = String
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        return value.upper() if value else value


metadata = MetaData()
thing = Table(
    "thing",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("label", String),
    Column("tags", ARRAY(String)),
    Column("shout", Upper),
    Column("pairs", ARRAY(String, as_tuple=True)),
)


def test_parameters_go_in_the_statement_s_order_with_its_own_literals() -> None:
    statement = DriverStatement(
        select(thing.c.id, literal("fixed").label("kind")).where(
            thing.c.label == bindparam("label"), thing.c.id > bindparam("above")
        )
    )
    assert statement.arguments({"above": 3, "label": "x"}) == ["fixed", "x", 3]
    assert "$1" in statement.sql
    assert "$3" in statement.sql


def test_a_missing_parameter_is_an_error_not_a_null() -> None:
    statement = DriverStatement(select(thing.c.id).where(thing.c.label == bindparam("label")))
    with pytest.raises(KeyError):
        statement.arguments({})


def test_plain_arrays_come_back_from_the_driver_as_sqlalchemy_would_make_them() -> None:
    DriverStatement(select(thing.c.id, thing.c.label, thing.c.tags))


@pytest.mark.parametrize("column", ["shout", "pairs"])
def test_a_value_sqlalchemy_would_convert_is_refused(column: str) -> None:
    with pytest.raises(ValueError, match=column):
        DriverStatement(select(thing.c.id, thing.c[column]))


def test_a_row_lock_must_be_declared() -> None:
    locking = select(thing.c.id).where(thing.c.id == bindparam("id")).with_for_update()
    with pytest.raises(ValueError, match="row lock"):
        DriverStatement(locking)
    assert "FOR UPDATE" in DriverStatement(locking, locks_rows=True).sql
