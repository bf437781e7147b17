"""Mutual TLS on the SAS's FHIR port, with an authority and certificates made here (cryptography):
a certificate of the right authority and subject gets in; a wrong CN or OU, another authority or no
certificate at all does not. Traffic stays on 127.0.0.1."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.config import Settings
from service.fhir import appointments
from service.fhir.mtls import fhir_server, parse_subject, subject_allowed
from service.main import create_app
from tests.builders import Tenant, unique_rpps
from tests.integration.test_fhir import join_sas
from tests.integration.test_fhir_sas_push import sas_booking, sas_settings
from tests.receiver import Receiver


@dataclass
class Identity:
    cert: Path
    key: Path


def _name(cn: str, ou: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou)]
    )


def _write(folder: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Identity:
    cert_path, key_path = folder / f"{stem}.pem", folder / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Identity(cert_path, key_path)


def authority(folder: Path, stem: str) -> tuple[Identity, x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    name = _name(f"{stem} test CA", "IGC-Santé (test)")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return _write(folder, stem, cert, key), cert, key


def issued(
    folder: Path, stem: str, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], cn: str, ou: str, *, server: bool
) -> Identity:
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, ou))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    return _write(folder, stem, builder.sign(ca_key, hashes.SHA256()), key)


@dataclass
class Pki:
    ca: Identity
    server: Identity
    good: Identity
    wrong_cn: Identity
    wrong_ou: Identity
    stranger: Identity


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca, ca_cert, ca_key = authority(folder, "ca")
    _, other_cert, other_key = authority(folder, "other")
    signer = (ca_cert, ca_key)
    return Pki(
        ca=ca,
        server=issued(folder, "server", signer, "snp.cpts.test", "SNP", server=True),
        good=issued(folder, "good", signer, "sas.sante.test", "SAS", server=False),
        wrong_cn=issued(folder, "wrong-cn", signer, "intruder.test", "SAS", server=False),
        wrong_ou=issued(folder, "wrong-ou", signer, "sas.sante.test", "Autre", server=False),
        stranger=issued(folder, "stranger", (other_cert, other_key), "sas.sante.test", "SAS", server=False),
    )


@pytest.fixture
async def fhir_port(pki: Pki, settings: Settings) -> AsyncIterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = fhir_server(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        certfile=str(pki.server.cert),
        keyfile=str(pki.server.key),
        ca_certs=str(pki.ca.cert),
        subjects=["CN=sas.sante.test,OU=SAS"],
        lifespan="on",
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.02)
    yield port
    server.should_exit = True
    await task


def context(pki: Pki, identity: Identity | None) -> ssl.SSLContext:
    trusted = ssl.create_default_context(cafile=str(pki.ca.cert))
    if identity is not None:
        trusted.load_cert_chain(str(identity.cert), str(identity.key))
    return trusted


async def get(pki: Pki, port: int, identity: Identity | None, path: str = "/fhir/metadata") -> httpx.Response:
    async with httpx.AsyncClient(verify=context(pki, identity), timeout=5, trust_env=False) as http:
        return await http.get(f"https://127.0.0.1:{port}{path}", headers={"Authorization": "Bearer snpsas_x"})


async def test_the_right_certificate_gets_in(pki: Pki, fhir_port: int) -> None:
    answer = await get(pki, fhir_port, pki.good)
    assert answer.status_code == 200  # the metadata (a search would then need the SAS's API key)
    assert answer.json()["resourceType"] == "CapabilityStatement"
    elsewhere = await get(pki, fhir_port, pki.good, "/v1/requests")
    assert (elsewhere.status_code, elsewhere.json()["resourceType"]) == (404, "OperationOutcome")  # /fhir only


@pytest.mark.parametrize("who", ["wrong_cn", "wrong_ou", "stranger", None])
async def test_any_other_certificate_or_none_is_refused(pki: Pki, fhir_port: int, who: str | None) -> None:
    identity = getattr(pki, who) if who else None
    with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
        await get(pki, fhir_port, identity)


def test_subjects_are_matched_on_cn_and_ou() -> None:
    allowed = [parse_subject("CN=sas.sante.fr, OU=SAS")]
    cert = {"subject": ((("commonName", "sas.sante.fr"),), (("organizationalUnitName", "SAS"),))}
    assert subject_allowed(cert, allowed)
    assert not subject_allowed({"subject": ((("commonName", "sas.sante.fr"),),)}, allowed)
    assert not subject_allowed(None, allowed)
    with pytest.raises(ValueError, match="CN"):
        parse_subject("O=ANS")


# --- the other way: our client certificate when we send appointments to the SAS (INT_R03) -------


async def test_appointments_go_to_the_sas_with_our_client_certificate_and_not_without(
    pki: Pki,
    client: httpx.AsyncClient,
    tenant: Tenant,
    sessionmaker: async_sessionmaker[AsyncSession],
    sas_receiver: Receiver,
    database_url: str,
) -> None:
    secured = Receiver()
    # The SAS's side: its server certificate, and ours required, of the same authority.
    await secured.start(
        ssl_certfile=str(pki.server.cert),
        ssl_keyfile=str(pki.server.key),
        ssl_ca_certs=str(pki.ca.cert),
        ssl_cert_reqs=ssl.CERT_REQUIRED,
    )
    try:
        await join_sas(client, tenant)
        await sas_booking(client, tenant, rpps=unique_rpps())
        base = {"SNP_SAS_BASE_URL": f"https://127.0.0.1:{secured.port}/fhir", "SNP_SAS_CA_CERTS": str(pki.ca.cert)}
        anonymous = sas_settings(database_url, None, **base)
        async with appointments.http_client(anonymous) as http:
            assert await appointments.run_once(sessionmaker, anonymous, http) == 1
        assert secured.calls == []  # the handshake failed: nothing reached the SAS
        [pending] = (await client.get("/v1/sas/deliveries", headers=tenant.coordinator)).json()["items"]
        assert (pending["status"], pending["last_error"]) == ("pending", "no answer")
        identified = sas_settings(
            database_url, None, SNP_SAS_CLIENT_CERT=str(pki.good.cert), SNP_SAS_CLIENT_KEY=str(pki.good.key), **base
        )
        later = datetime.now(UTC) + timedelta(minutes=5)  # past the first retry's backoff
        async with appointments.http_client(identified) as http:
            assert await appointments.run_once(sessionmaker, identified, http, now=lambda: later) == 1
        [received] = secured.calls
        assert (received.method, received.path) == ("POST", "/fhir/Appointment")
    finally:
        await secured.stop()
