"""The one place that reads the wall clock. Domain code receives `now` as a parameter."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends


def utc_now() -> datetime:
    return datetime.now(UTC)


async def request_now() -> datetime:
    """The request's clock. A coroutine, because FastAPI runs plain-function dependencies in a
    thread pool: a thread hop per request on the hot paths."""
    return utc_now()


# Tests override `request_now` through `app.dependency_overrides` to move time.
Now = Annotated[datetime, Depends(request_now)]
