"""The one place that reads the wall clock. Domain code receives `now` as a parameter."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends


def utc_now() -> datetime:
    return datetime.now(UTC)


# Tests override `utc_now` through `app.dependency_overrides` to move time.
Now = Annotated[datetime, Depends(utc_now)]
