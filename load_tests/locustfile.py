"""Locust scenarios: a winter day of a large CPTS against a running service.

    .venv/bin/python -m load_tests.generator            # once: a CPTS and its credentials
    .venv/bin/locust -f load_tests/locustfile.py --headless -u 28 -r 7 -t 1m --host http://127.0.0.1:8000

Call handlers (create the request, read the suggestions, hold, confirm, sometimes cancel; or
record another orientation), practice software (batch publication, a window sync, the booking
feed) and coordinators (the monthly report, the activity export), in the proportions of
`scenarios.USER_WEIGHTS`. Each person acts at Poisson arrival times (`scenarios.Schedule`); the
rows named `DUE ...` measure each activity from the instant it was due, so that a slow service
shows there rather than in requests silently not sent (coordinated omission).
"""

from __future__ import annotations

import os
import random
import time
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import gevent
from locust import FastHttpUser, task
from locust.exception import StopUser

from load_tests import scenarios
from load_tests.scenarios import Credentials, Schedule

CREDENTIALS = Credentials.load(Path(os.environ.get("SNP_LOAD_CREDENTIALS", str(scenarios.CREDENTIALS))))
_people = iter(range(10**9))


class Person(FastHttpUser):
    """Someone acting at Poisson arrival times; each activity is a method of the same name."""

    abstract = True
    activities: ClassVar[dict[str, float]] = {}
    headers: dict[str, str]

    def on_start(self) -> None:
        self.index = next(_people)
        self.rng = random.Random(self.index)
        self.schedule = Schedule(self.activities, self.rng, time.time())

    def wait_time(self) -> float:
        return self.schedule.wait(time.time())

    @task
    def act(self) -> None:
        # Locust runs a user's first task at once: wait until something is due.
        gevent.sleep(self.schedule.wait(time.time()))
        name = self.schedule.take()
        getattr(self, name)()
        # The activity as the person lived it: from when it was due, queueing included.
        self.environment.events.request.fire(
            request_type="DUE",
            name=name,
            response_time=(time.time() - self.schedule.intended) * 1000,
            response_length=0,
            exception=None,
            context={},
        )

    def login(self, emails: list[str]) -> None:
        email = emails[self.index % len(emails)]
        with self.client.post(
            "/v1/auth/token",
            data={"username": email, "password": CREDENTIALS.password},
            name="POST /v1/auth/token",
            catch_response=True,
        ) as answer:
            if answer.status_code != 200:
                answer.failure(f"login refused: {answer.status_code}")
                raise StopUser
            self.headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}

    def post(self, path: str, body: dict[str, Any], name: str, expected: tuple[int, ...]) -> Any:
        """POST with an Idempotency-Key; `expected` statuses are successes (a 409 for a slot another
        handler took first is the business, not an error)."""
        with self.client.post(
            path, json=body, headers={**self.headers, **scenarios.idempotency_key()}, name=name, catch_response=True
        ) as answer:
            if answer.status_code not in expected:
                answer.failure(f"{answer.status_code}: {answer.text[:200]}")
                return None
            answer.success()
            return answer.json() if answer.status_code < 300 else None

    def get(self, path: str, name: str, params: dict[str, Any] | None = None) -> Any:
        with self.client.get(path, params=params, headers=self.headers, name=name, catch_response=True) as answer:
            if answer.status_code != 200:
                answer.failure(f"{answer.status_code}: {answer.text[:200]}")
                return None
            return answer.json() if answer.headers.get("content-type", "").startswith("application/json") else True


class CallHandler(Person):
    weight = scenarios.USER_WEIGHTS["handler"]
    activities = scenarios.HANDLER_ACTIVITIES

    def on_start(self) -> None:
        super().on_start()
        self.login(CREDENTIALS.handlers)

    def call(self) -> None:
        ending = scenarios.pick(self.rng, scenarios.CALL_ENDINGS)
        body = scenarios.request_body(self.rng, CREDENTIALS.communes, red_flag=ending == "red_flag")
        created = self.post("/v1/requests", body, "POST /v1/requests", (201,))
        if created is None:
            return
        request = created["id"]
        if ending == "red_flag":  # screened: the 15 takes it
            self.orient(request, "transfer_15")
        elif ending == "book":
            self.book(request)
        else:
            self.orient(request, ending)

    def queue(self) -> None:
        self.get("/v1/requests", "GET /v1/requests (queue)", {"limit": 20})

    def book(self, request: str) -> None:
        found = self.get(f"/v1/requests/{request}/suggestions", "GET /v1/requests/[id]/suggestions", {"limit": 5})
        for suggestion in (found or {}).get("items", []):
            held = self.post(
                f"/v1/requests/{request}/hold",
                {"slot_id": suggestion["slot_id"]},
                "POST /v1/requests/[id]/hold",
                (201, 409),  # 409: another handler took the slot first; try the next one
            )
            if held is None:
                continue
            booking = held["booking_id"]
            if self.post(f"/v1/bookings/{booking}/confirm", {}, "POST /v1/bookings/[id]/confirm", (200,)) is None:
                return
            if self.rng.random() < scenarios.CANCELLED_SHARE:
                self.post(
                    f"/v1/bookings/{booking}/cancel", scenarios.cancel_body(), "POST /v1/bookings/[id]/cancel", (200,)
                )
            return
        self.orient(request, "no_solution")

    def orient(self, request: str, outcome: str) -> None:
        self.post(
            f"/v1/requests/{request}/orientations",
            scenarios.orientation_body(outcome),
            "POST /v1/requests/[id]/orientations",
            (201,),
        )


class PracticeSoftware(Person):
    weight = scenarios.USER_WEIGHTS["software"]
    activities = scenarios.SOFTWARE_ACTIVITIES

    def on_start(self) -> None:
        super().on_start()
        self.headers = {"Authorization": f"Bearer {CREDENTIALS.api_key}"}
        self.cursor: str | None = None

    def feed(self) -> None:
        params: dict[str, Any] = {"limit": 100}
        if self.cursor:
            params["cursor"] = self.cursor
        page = self.get("/v1/bookings/feed", "GET /v1/bookings/feed", params)
        if page and page.get("next_cursor"):
            self.cursor = page["next_cursor"]

    def publish(self) -> None:
        body = scenarios.publish_batch(self.rng, CREDENTIALS.practitioners, datetime.now(scenarios.TZ).date())
        self.post("/v1/slots/batch", body, "POST /v1/slots/batch", (200,))

    def sync(self) -> None:
        body = scenarios.sync_body(self.rng, CREDENTIALS.practitioners, datetime.now(scenarios.TZ).date())
        self.post("/v1/slots/sync", body, "POST /v1/slots/sync", (200,))


class Coordinator(Person):
    weight = scenarios.USER_WEIGHTS["coordinator"]
    activities = scenarios.COORDINATOR_ACTIVITIES

    def on_start(self) -> None:
        super().on_start()
        self.login(CREDENTIALS.coordinators)
        self.month = CREDENTIALS.history_month or datetime.now(scenarios.TZ).strftime("%Y-%m")

    def monthly_report(self) -> None:
        self.get("/v1/reports/monthly", "GET /v1/reports/monthly", {"month": self.month})

    def export(self) -> None:
        self.get("/v1/reports/activity", "GET /v1/reports/activity (csv)", {"month": self.month, "format": "csv"})
