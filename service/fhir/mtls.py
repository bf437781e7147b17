"""Mutual TLS for the SAS (the guide requires IGC-Santé certificates): a port of its own that only
serves `/fhir`, requires a client certificate signed by the configured authorities (the TLS
handshake refuses an unknown authority or no certificate), and accepts it only when its subject's
CN and OU are in the allow-list (the connection is closed otherwise, before any request is read).

`snp serve --fhir-port 8443 --ssl-certfile server.pem --ssl-keyfile server.key --ssl-ca-certs
igc-sante.pem --sas-subject "CN=...,OU=..."` runs it beside the main port."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Sequence
from typing import Any, Literal

import structlog
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

_log = structlog.get_logger("service.mtls")
_NAMES = {"CN": "commonName", "OU": "organizationalUnitName", "O": "organizationName", "C": "countryName"}


def parse_subject(text: str) -> dict[str, str]:
    """ "CN=sas.sante.fr,OU=SAS" -> {"commonName": "sas.sante.fr", "organizationalUnitName": "SAS"}."""
    wanted: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep or key.strip().upper() not in _NAMES or not value.strip():
            raise ValueError(f"a subject is written CN=...,OU=... (got '{text}')")
        wanted[_NAMES[key.strip().upper()]] = value.strip()
    if "commonName" not in wanted or "organizationalUnitName" not in wanted:
        raise ValueError(f"a subject names at least its CN and its OU (got '{text}')")
    return wanted


def subject_of(peercert: dict[str, Any] | None) -> dict[str, list[str]]:
    """The subject of a certificate as `ssl` gives it, attribute -> values."""
    found: dict[str, list[str]] = {}
    for rdn in (peercert or {}).get("subject", ()):
        for name, value in rdn:
            found.setdefault(name, []).append(value)
    return found


def subject_allowed(peercert: dict[str, Any] | None, allowed: Sequence[dict[str, str]]) -> bool:
    """Whether the certificate's subject carries every attribute of one allowed subject."""
    subject = subject_of(peercert)
    return any(all(value in subject.get(name, []) for name, value in wanted.items()) for wanted in allowed)


class MutualTlsProtocol(H11Protocol):
    """HTTP/1.1 over TLS that closes the connection of a client whose certificate's subject is not
    allowed (the handshake already checked the certificate chain)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        allowed: Sequence[dict[str, str]] = getattr(self.config, "sas_subjects", ())
        peercert = transport.get_extra_info("peercert")
        if not subject_allowed(peercert, allowed):
            _log.warning("mtls.refused", subject=str(subject_of(peercert)))
            transport.abort()


def fhir_only(app: ASGIApp) -> ASGIApp:
    """The mutual-TLS port serves the FHIR interface and nothing else."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not str(scope.get("path", "")).startswith("/fhir"):
            body = json.dumps(
                {
                    "resourceType": "OperationOutcome",
                    "issue": [
                        {"severity": "error", "code": "not-supported", "diagnostics": "This port serves /fhir only."}
                    ],
                }
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 404,
                    "headers": [
                        (b"content-type", b"application/fhir+json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return guarded


def fhir_server(
    app: ASGIApp,
    *,
    host: str,
    port: int,
    certfile: str,
    keyfile: str,
    ca_certs: str,
    subjects: Sequence[str],
    lifespan: Literal["auto", "on", "off"] = "off",
) -> uvicorn.Server:
    """The FHIR port's server. `lifespan="off"` beside the main server (which runs the app's
    startup); "on" when it serves alone (tests)."""
    allowed = [parse_subject(s) for s in subjects]
    if not allowed:
        raise ValueError("mutual TLS for the SAS needs at least one allowed subject (--sas-subject)")
    config = uvicorn.Config(
        fhir_only(app),
        host=host,
        port=port,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
        ssl_ca_certs=ca_certs,
        ssl_cert_reqs=ssl.CERT_REQUIRED,
        http=MutualTlsProtocol,
        lifespan=lifespan,
        log_config=None,
        access_log=False,
    )
    config.sas_subjects = allowed  # type: ignore[attr-defined]
    return uvicorn.Server(config)
