"""A stand-in for an agenda editor's SAS interface, on 127.0.0.1: it answers `GET /fhir/Slot` with
what the test plans (a Bundle, a status, an OperationOutcome, or nothing in time) and records the
queries. The Bundles are the guide's own example (INT_R01) rewritten with the test's practitioners."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.receiver import serve_locally

EXAMPLE = Path(__file__).resolve().parent / "fixtures" / "sas_ig" / "Bundle-ExampleBundlePSIndiv.json"
TYPE_CRENEAU = "https://mos.esante.gouv.fr/NOS/TRE_R314-TypeCreneau/FHIR/TRE-R314-TypeCreneau"


@dataclass(frozen=True)
class EditorSlot:
    slot_id: str
    idnps: str
    start: datetime
    minutes: int = 20
    types: tuple[str, ...] = ("SNP",)
    address: str = "3 rue de la Paix"
    postal_code: str = "44000"
    city: str = "Nantes"
    modality: str = "AMB"

    @property
    def agenda_url(self) -> str:
        return f"https://agenda.example/rdv/{self.slot_id}"


def bundle(slots: list[EditorSlot]) -> dict[str, Any]:
    """The guide's INT_R01 example, its first Slot, Schedule, Practitioner and PractitionerRole
    repeated for each slot with the slot's practitioner, place, time and types."""
    example = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    by_type = {e["resource"]["resourceType"]: e["resource"] for e in reversed(example["entry"])}
    entries: list[dict[str, Any]] = []
    for n, slot in enumerate(slots):
        resource = copy.deepcopy(by_type["Slot"])
        resource.update(
            id=slot.slot_id,
            start=slot.start.isoformat(timespec="milliseconds"),
            end=(slot.start + timedelta(minutes=slot.minutes)).isoformat(timespec="milliseconds"),
            comment=slot.agenda_url,
            schedule={"reference": f"Schedule/s{n}"},
        )
        resource["meta"]["security"] = [{"system": TYPE_CRENEAU, "code": t} for t in slot.types]
        resource["serviceType"][0]["coding"][0]["code"] = slot.modality
        schedule = copy.deepcopy(by_type["Schedule"])
        schedule.update(
            id=f"s{n}", actor=[{"reference": f"Practitioner/p{n}"}, {"reference": f"PractitionerRole/r{n}"}]
        )
        practitioner = copy.deepcopy(by_type["Practitioner"])
        practitioner["id"] = f"p{n}"
        practitioner["identifier"][0]["value"] = slot.idnps
        role = copy.deepcopy(by_type["PractitionerRole"])
        role.update(id=f"r{n}", practitioner={"reference": f"Practitioner/p{n}"})
        role["contained"][0]["address"] = {"line": [slot.address], "postalCode": slot.postal_code, "city": slot.city}
        entries += [{"resource": r} for r in (resource, schedule, practitioner, role)]
    return {**{k: v for k, v in example.items() if k != "entry"}, "total": len(slots), "entry": entries}


Answer = Callable[[Request], Any]  # returns (status, json body) or a Response


@dataclass
class Editor:
    """Answers with `answer(request)`: a dict (200 and that Bundle), or (status, body)."""

    answer: Answer = field(default=lambda request: bundle([]))
    delay: float = 0.0
    queries: list[list[tuple[str, str]]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    port: int = 0
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    def serve(self, slots: list[EditorSlot]) -> None:
        self.answer = lambda request: bundle(slots)

    async def _slot(self, request: Request) -> Response:
        self.queries.append(list(request.query_params.multi_items()))
        self.headers.append(dict(request.headers))
        if self.delay:
            await asyncio.sleep(self.delay)
        answered = self.answer(request)
        if isinstance(answered, Response):
            return answered
        if isinstance(answered, tuple):
            status, body = answered
            return JSONResponse(body, status_code=status, media_type="application/fhir+json")
        return JSONResponse(answered, media_type="application/fhir+json")

    def app(self) -> Starlette:
        """The editor's SAS interface as an app (the browser tests serve it in a thread)."""
        return Starlette(routes=[Route("/fhir/Slot", self._slot, methods=["GET"])])

    async def start(self) -> None:
        self.port, self._server, self._task = await serve_locally(self.app())

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
