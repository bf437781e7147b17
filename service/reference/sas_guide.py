"""The code systems and profiles of the ANS guide "Service d'Accès aux Soins" 1.1.0 that both sides
of the SAS flows use: the FHIR facade that answers the SAS (`service.fhir`) and the connector that
reads an agenda editor's SAS interface (`service.connectors`). The guide's package is in
`service/fhir/ig/`."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

IG = Path(__file__).resolve().parent.parent / "fhir" / "ig"
IDNPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
IDNST_SYSTEM = "urn:oid:1.2.250.1.71.4.2.2"
V2_0203 = "http://interopsante.org/fhir/CodeSystem/fr-v2-0203"
TYPE_CRENEAU = "https://mos.esante.gouv.fr/NOS/TRE_R314-TypeCreneau/FHIR/TRE-R314-TypeCreneau"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SPECIALITE = "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale"


@cache
def profile(name: str) -> str:
    """A profile's canonical URL, as its StructureDefinition in the guide's package says it (the
    guide mixes http://sas.fr/... and https://interop.esante.gouv.fr/...)."""
    definition = json.loads((IG / f"StructureDefinition-{name}.json").read_text(encoding="utf-8"))
    url: str = definition["url"]
    return url
