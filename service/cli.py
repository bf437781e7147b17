"""`snp`: serve, migrate, administer tenants, seed a demo, export reports."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from service import embedded_db, migrate
from service.config import Environment, Settings, get_settings, webhook_policy
from service.reporting.labels import Lang

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from service.reporting.schemas import CompensationStatement, MonthlyReport

app = typer.Typer(help="SNP orientation and slot-booking service.", no_args_is_help=True, add_completion=False)
cpts_app = typer.Typer(help="Manage CPTS (tenants).", no_args_is_help=True)
report_app = typer.Typer(help="Export a report to a file (or standard output).", no_args_is_help=True)
user_app = typer.Typer(help="Manage staff users.", no_args_is_help=True)
client_app = typer.Typer(help="Manage practice-software clients.", no_args_is_help=True)
app.add_typer(cpts_app, name="cpts")
app.add_typer(user_app, name="user")
app.add_typer(client_app, name="client")
app.add_typer(report_app, name="report")
sas_app = typer.Typer(help="The national SAS platform's access to the FHIR interface.", no_args_is_help=True)
app.add_typer(sas_app, name="sas-client")

T = TypeVar("T")
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object (ids, secrets) for scripts.")]


@contextmanager
def database(settings: Settings) -> Iterator[str]:
    """DATABASE_URL, or the embedded server's database (started for the duration if needed)."""
    if settings.database_url:
        yield settings.database_url
    else:
        with embedded_db.embedded_database(settings.data_dir) as url:
            yield url


def run_with_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work(session)` in one committed transaction on the service's migrated database."""
    from service.db import create_engine, create_sessionmaker, session_scope

    async def main(url: str) -> T:
        engine = create_engine(url, pool_size=2, max_overflow=0)
        try:
            async with session_scope(create_sessionmaker(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    with database(settings) as url:
        migrate.upgrade(url)
        return asyncio.run(main(url))


def _exit_on_sigterm() -> None:
    """uvicorn re-raises the SIGTERM it handled once it has shut down; turning it into SystemExit
    lets the embedded server stop in our `finally` instead of dying with the process."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, handler)


def emit(as_json: bool, payload: dict[str, Any], lines: list[str]) -> None:
    if as_json:
        typer.echo(json.dumps(payload, default=str))
    else:
        for line in lines:
            typer.echo(line)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(envvar="SNP_WORKERS", help="Worker processes.")] = 1,
    fhir_port: Annotated[
        int | None, typer.Option(help="Also serve /fhir for the SAS on this port, with mutual TLS.")
    ] = None,
    ssl_certfile: Annotated[Path | None, typer.Option(help="The FHIR port's server certificate (PEM).")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="Its private key (PEM).")] = None,
    ssl_ca_certs: Annotated[
        Path | None, typer.Option(help="Authorities the SAS's client certificate must chain to (IGC-Santé).")
    ] = None,
    sas_subject: Annotated[
        list[str] | None, typer.Option(help='An allowed client certificate subject, "CN=...,OU=..." (repeatable).')
    ] = None,
    reports_process: Annotated[
        bool,
        typer.Option(
            envvar="SNP_REPORTS_PROCESS",
            help="Compute the coordinators' reports and exports in a process of their own, at a lower CPU priority.",
        ),
    ] = True,
) -> None:
    """Migrate, then serve the API (embedded PostgreSQL unless DATABASE_URL is set)."""
    import uvicorn

    from service.reports_process import supervised_reports_process

    settings = get_settings()
    if fhir_port is not None and (workers != 1 or not (ssl_certfile and ssl_keyfile and ssl_ca_certs and sas_subject)):
        typer.echo(
            "error: --fhir-port needs --ssl-certfile, --ssl-keyfile, --ssl-ca-certs, --sas-subject and a single worker",
            err=True,
        )
        raise typer.Exit(2)
    with database(settings) as url, ExitStack() as stack:
        migrate.upgrade(url)
        # The app (and every worker process) reads the same server from the environment.
        os.environ["DATABASE_URL"] = url
        if reports_process:
            os.environ["SNP_REPORTS_SOCKET"] = str(stack.enter_context(supervised_reports_process()))
        get_settings.cache_clear()
        _exit_on_sigterm()
        typer.echo(f"Serving on http://{host}:{port} (docs at http://{host}:{port}/docs)", err=True)
        if fhir_port is not None:
            _serve_with_fhir_port(host, port, fhir_port, ssl_certfile, ssl_keyfile, ssl_ca_certs, sas_subject or [])
            return
        app_options: dict[str, Any] = {"factory": True, "log_config": None, "access_log": False}
        # Each worker on a socket of its own, over which Linux spreads the connections (service.workers);
        # elsewhere (no uvloop, or SO_REUSEPORT handing every connection to one socket) uvicorn's way.
        if workers > 1 and port and sys.platform == "linux":  # port 0: uvicorn's one socket, one random port
            from service import workers as serving

            try:
                serving.serve("service.main:create_app", host, port, workers, **app_options)
            except serving.CannotListen as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(1) from exc
            return
        uvicorn.run("service.main:create_app", host=host, port=port, workers=workers, **app_options)


@app.command("serve-reports", hidden=True)
def serve_reports(uds: Annotated[Path, typer.Option(help="The Unix socket to listen on.")]) -> None:
    """The reports process `snp serve` starts (service.reports_process): the same app on a Unix
    socket, trusting the client address its workers forward."""
    import uvicorn

    from service.reports_process import lower_priority_and_follow_parent

    lower_priority_and_follow_parent()

    uvicorn.run(
        "service.main:create_app",
        factory=True,
        uds=str(uds),
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips="*",
    )


def _serve_with_fhir_port(
    host: str, port: int, fhir_port: int, certfile: Any, keyfile: Any, ca_certs: Any, subjects: list[str]
) -> None:
    """The main port and the SAS's mutual-TLS port in one process, sharing one app (and pool)."""
    import asyncio

    import uvicorn

    from service.fhir.mtls import fhir_server
    from service.main import create_app

    app = create_app()
    main = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False))
    sas = fhir_server(
        app,
        host=host,
        port=fhir_port,
        certfile=str(certfile),
        keyfile=str(keyfile),
        ca_certs=str(ca_certs),
        subjects=subjects,
    )
    typer.echo(f"Serving /fhir for the SAS on https://{host}:{fhir_port} (mutual TLS)", err=True)

    async def both() -> None:
        await asyncio.gather(main.serve(), sas.serve())

    asyncio.run(both())


@app.command("migrate")
def migrate_command(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply the database migrations."""
    with database(get_settings()) as url:
        migrate.upgrade(url, revision)
    typer.echo(f"Database migrated to {revision}.", err=True)


@app.command()
def openapi(output: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout.")] = None) -> None:
    """Print the OpenAPI document of the app."""
    from service.main import create_app

    settings = Settings(
        SNP_ENV=Environment.development,
        SNP_SECRET_KEY="openapi-only",  # noqa: S106 - never signs anything
        DATABASE_URL="postgresql://unused/unused",
    )
    text = json.dumps(create_app(settings).openapi(), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


@cpts_app.command("create")
def cpts_create(
    name: Annotated[str, typer.Option(help="Name of the CPTS.")],
    population: Annotated[int, typer.Option(help="Inhabitants of its territory (gives the size class).")],
    timezone: Annotated[str, typer.Option(help="IANA timezone.")] = "Europe/Paris",
    contract_start: Annotated[str | None, typer.Option(help="ACI contract start date, YYYY-MM-DD.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a CPTS."""
    from service.clock import utc_now
    from service.cpts import service as cpts_service
    from service.cpts.domain import size_class
    from service.cpts.schemas import CptsCreate

    data = _validated(
        CptsCreate,
        name=name,
        population=population,
        timezone=timezone,
        contract_start_date=date.fromisoformat(contract_start) if contract_start else None,
    )
    cpts = run_with_session(get_settings(), lambda s: cpts_service.create(s, data, utc_now()))
    size = size_class(cpts.population)
    emit(as_json, {"id": str(cpts.id), "name": cpts.name, "size": size}, [f"CPTS {cpts.id} created (size {size})."])


@user_app.command("create")
def user_create(
    cpts: Annotated[uuid.UUID, typer.Option(help="CPTS id.")],
    email: Annotated[str, typer.Option(help="Login e-mail.")],
    role: Annotated[str, typer.Option(help="handler, coordinator or admin.")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, help="At least 12 characters.")],
    display_name: Annotated[str | None, typer.Option(help="Name shown in the UI.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a staff user."""
    from service.accounts import service as accounts_service
    from service.accounts.domain import password_hasher
    from service.accounts.schemas import UserCreate
    from service.cpts import repository as cpts_repository

    settings = get_settings()
    data = _validated(UserCreate, email=email, display_name=display_name or email, role=role, password=password)
    hasher = password_hasher(settings.argon2_time_cost, settings.argon2_memory_kib)

    async def work(session: Any) -> Any:
        await cpts_repository.get(session, cpts)
        return await accounts_service.create_user(session, hasher, cpts, data)

    user = _or_exit(lambda: run_with_session(settings, work))
    emit(as_json, {"id": str(user.id), "email": user.email, "role": user.role}, [f"User {user.id} created."])


@client_app.command("create")
def client_create(
    cpts: Annotated[uuid.UUID, typer.Option(help="CPTS id.")],
    name: Annotated[str, typer.Option(help="Name of the practice software.")],
    practitioner: Annotated[list[uuid.UUID] | None, typer.Option(help="A practitioner it publishes for.")] = None,
    webhook_url: Annotated[str | None, typer.Option(help="Where booking events are POSTed.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a software client and print its API key (shown once)."""
    from service.accounts import service as accounts_service
    from service.accounts.schemas import ClientCreate
    from service.cpts import repository as cpts_repository

    data = _validated(ClientCreate, name=name, practitioner_ids=practitioner or [], webhook_url=webhook_url)

    async def work(session: Any) -> Any:
        await cpts_repository.get(session, cpts)
        return await accounts_service.create_client(session, cpts, data, webhook_policy(get_settings()))

    created = _or_exit(lambda: run_with_session(get_settings(), work))
    emit(
        as_json,
        {"id": str(created.id), "api_key": created.api_key, "webhook_secret": created.webhook_secret},
        [f"Client {created.id} created.", f"API key (shown once): {created.api_key}"],
    )


@sas_app.command("create")
def sas_client_create(
    name: Annotated[str, typer.Option(help="Name of the SAS platform's client.")], as_json: JsonFlag = False
) -> None:
    """Create the SAS platform's principal (one per deployment) and print its API key (shown once)."""
    from service.accounts import service as accounts_service
    from service.clock import utc_now

    client, key = _or_exit(
        lambda: run_with_session(get_settings(), lambda s: accounts_service.create_sas_client(s, name, utc_now()))
    )
    emit(
        as_json,
        {"id": str(client.id), "api_key": key},
        [f"SAS client {client.id} created.", f"API key (shown once): {key}"],
    )


@sas_app.command("rotate-key")
def sas_client_rotate(
    client_id: Annotated[
        uuid.UUID | None, typer.Option("--id", help="Which SAS client (default: the only one).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Give the SAS client a new API key (shown once); the previous one stops working now."""
    from service.accounts import service as accounts_service
    from service.clock import utc_now

    client, key = _or_exit(
        lambda: run_with_session(get_settings(), lambda s: accounts_service.rotate_sas_key(s, client_id, utc_now()))
    )
    emit(as_json, {"id": str(client.id), "api_key": key}, [f"SAS client {client.id}: new API key (shown once): {key}"])


@app.command("seed-demo")
def seed_demo(as_json: JsonFlag = False) -> None:
    """Create (or refresh) a demo CPTS with members, users of each role and a software client."""
    from service.demo import seed

    settings = get_settings()
    result = run_with_session(settings, lambda s: seed(s, settings))
    emit(as_json, result.as_json(), result.lines())


CptsOption = Annotated[uuid.UUID, typer.Option("--cpts", help="CPTS id.")]
MonthOption = Annotated[str, typer.Option("--month", help="YYYY-MM, in the CPTS's timezone.")]
FormatOption = Annotated[str, typer.Option("--format", help="json, csv or xlsx.")]
OutputOption = Annotated[Path | None, typer.Option("--output", help="File to write (default: standard output).")]


def _write(output: Path | None, fmt: str, text: Iterator[str] | None = None, write_xlsx: Any = None) -> None:
    if fmt == "xlsx":
        if output is None:
            typer.echo("error: --output is required for xlsx", err=True)
            raise typer.Exit(2)
        with output.open("wb") as handle:
            write_xlsx(handle)
    elif output is None:
        for chunk in text or ():
            sys.stdout.write(chunk)
    else:
        with output.open("w", encoding="utf-8", newline="") as handle:
            handle.writelines(text or ())


def _check_format(fmt: str, allowed: tuple[str, ...] = ("json", "csv", "xlsx")) -> None:
    if fmt not in allowed:
        typer.echo(f"error: --format is one of {', '.join(allowed)}", err=True)
        raise typer.Exit(2)


LangOption = Annotated[
    str, typer.Option("--lang", help="fr (French titles, decimal commas) or en (field names), for csv and xlsx")
]


def _lang(lang: str) -> Lang:
    try:
        return Lang(lang)
    except ValueError:
        typer.echo("error: --lang is fr or en", err=True)
        raise typer.Exit(2) from None


@report_app.command("monthly")
def report_monthly(
    cpts: CptsOption,
    month: MonthOption,
    fmt: FormatOption = "json",
    output: OutputOption = None,
    lang: LangOption = "fr",
) -> None:
    """The month's indicators."""
    from service.clock import utc_now
    from service.reporting import export
    from service.reporting import service as reporting

    _check_format(fmt)

    async def work(session: AsyncSession) -> MonthlyReport:
        period = await reporting.period(session, cpts, reporting.parse_month(month), utc_now())
        return await reporting.monthly(session, period)

    report = _or_exit(lambda: run_with_session(get_settings(), work))
    chosen = _lang(lang)
    text = export.monthly_csv(report, chosen) if fmt == "csv" else iter([report.model_dump_json(indent=2) + "\n"])
    _write(output, fmt, text, lambda handle: export.monthly_xlsx(report, handle, chosen))


@report_app.command("compensation")
def report_compensation(
    cpts: CptsOption,
    month: MonthOption,
    fmt: FormatOption = "json",
    output: OutputOption = None,
    lang: LangOption = "fr",
) -> None:
    """The month's compensation statement."""
    from service.clock import utc_now
    from service.reporting import export
    from service.reporting import service as reporting

    _check_format(fmt)

    async def work(session: AsyncSession) -> CompensationStatement:
        period = await reporting.period(session, cpts, reporting.parse_month(month), utc_now())
        return await reporting.compensation(session, period)

    report = _or_exit(lambda: run_with_session(get_settings(), work))
    chosen = _lang(lang)
    text = export.statement_csv(report, chosen) if fmt == "csv" else iter([report.model_dump_json(indent=2) + "\n"])
    _write(output, fmt, text, lambda handle: export.statement_xlsx(report, handle, chosen))


@report_app.command("activity")
def report_activity(
    cpts: CptsOption,
    month: MonthOption,
    fmt: FormatOption = "csv",
    output: OutputOption = None,
    lang: LangOption = "fr",
) -> None:
    """The pseudonymised activity of the month, one line per request (streamed)."""
    from service.clock import utc_now
    from service.db import create_engine, create_sessionmaker
    from service.reporting import export
    from service.reporting import service as reporting

    _check_format(fmt, ("csv", "xlsx", "json"))
    if fmt == "xlsx" and output is None:
        typer.echo("error: --output is required for xlsx", err=True)
        raise typer.Exit(2)

    writers = {"csv": export.activity_csv_chunks, "xlsx": export.activity_xlsx_chunks}
    chosen = _lang(lang)

    async def main(url: str) -> None:
        engine = create_engine(url, pool_size=2, max_overflow=0)
        maker = create_sessionmaker(engine)
        try:
            async with maker() as session:
                period = await reporting.period(session, cpts, reporting.parse_month(month), utc_now())
            handle = output.open("wb") if output else sys.stdout.buffer
            try:
                lines = reporting.activity_lines(maker, period)
                title = export.month_title(reporting.header(period), "Activité pseudonymisée")
                chunks = export.activity_json_chunks(lines) if fmt == "json" else writers[fmt](lines, chosen, title)
                async for chunk in chunks:
                    handle.write(chunk)
            finally:
                if output:
                    handle.close()
        finally:
            await engine.dispose()

    with database(get_settings()) as url:
        migrate.upgrade(url)
        _or_exit(lambda: asyncio.run(main(url)))


@app.command("relay")
def relay_command() -> None:
    """Deliver webhooks and the SAS's appointments (a separate worker; `snp serve` also runs one
    unless SNP_RELAY_ENABLED=false)."""
    from service.db import create_engine, create_sessionmaker
    from service.fhir import appointments
    from service.notifications.relay import run_forever

    settings = get_settings()

    async def main(url: str) -> None:
        engine = create_engine(url, pool_size=2, max_overflow=0)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            typer.echo("Relay running; stop with Ctrl-C.", err=True)
            sessionmaker = create_sessionmaker(engine)
            await asyncio.gather(
                run_forever(sessionmaker, settings, stop), appointments.run_forever(sessionmaker, settings, stop)
            )
        finally:
            await engine.dispose()

    with database(settings) as url:
        migrate.upgrade(url)
        asyncio.run(main(url))


@app.command("pull-slots")
def pull_slots(
    source: Annotated[uuid.UUID | None, typer.Option("--source", help="Only this software client's source.")] = None,
    once: Annotated[bool, typer.Option("--once", help="One round, then print what it applied.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Pull slots from agenda software's SAS interfaces (the FHIR sources coordinators set up):
    the due sources, or with --source that one now. `snp serve` also pulls unless
    SNP_RELAY_ENABLED=false."""
    from service.clock import utc_now
    from service.config import webhook_policy
    from service.db import create_engine, create_sessionmaker
    from service.flows import slot_pull
    from service.logging import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level)  # to standard error, as the service logs: stdout says what was applied

    async def main(url: str) -> dict[str, Any]:
        engine = create_engine(url, pool_size=4, max_overflow=0)
        try:
            sessionmaker = create_sessionmaker(engine)
            if not once:
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(sig, stop.set)
                typer.echo("Pulling FHIR sources; stop with Ctrl-C.", err=True)
                await slot_pull.run_forever(sessionmaker, settings, stop)
                return {}
            secret = settings.secret_key.get_secret_value()
            results = await slot_pull.pull_due(sessionmaker, secret, webhook_policy(settings), utc_now, only=source)
            return {str(client): result.model_dump(mode="json") for client, result in results.items()}
        finally:
            await engine.dispose()

    with database(settings) as url:
        migrate.upgrade(url)
        pulled = asyncio.run(main(url))
    if once:
        lines = [_pull_line(client, r) for client, r in pulled.items()] or ["No FHIR source was due."]
        emit(as_json, pulled, lines)
        if any("kind" in r for r in pulled.values()):
            raise typer.Exit(code=1)


def _pull_line(client: str, r: dict[str, Any]) -> str:
    if "created" not in r:
        return f"{client}: failed ({r['kind']}): {r['detail']}"
    counts = ("created", "updated", "unchanged", "withdrawn", "conflicts", "skipped", "rejected", "sites_created")
    return f"{client}: " + ", ".join(f"{name.replace('_', ' ')} {r[name]}" for name in counts)


@app.command()
def purge(
    before: Annotated[
        str | None, typer.Option(help="Erase identities of requests received before this date (YYYY-MM-DD).")
    ] = None,
    cpts: Annotated[uuid.UUID | None, typer.Option("--cpts", help="Only this CPTS.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Erase patient identity fields past retention (default SNP_RETENTION_DAYS); the pseudonymised
    facts the indicators need remain."""
    from datetime import timedelta

    from service.clock import utc_now
    from service.retention import purge as purge_identities

    settings = get_settings()
    now = utc_now()
    cutoff = date.fromisoformat(before) if before else (now - timedelta(days=settings.retention_days)).date()
    result = run_with_session(settings, lambda s: purge_identities(s, cutoff, now, cpts))
    emit(
        as_json,
        {"before": cutoff.isoformat(), "requests": result.requests, "idempotency_records": result.idempotency_records},
        [f"Identities erased on {result.requests} request(s) received before {cutoff.isoformat()}."],
    )


def _validated(model: type[T], **values: Any) -> T:
    from pydantic import ValidationError

    try:
        return model.model_validate(values)  # type: ignore[attr-defined,no-any-return]
    except ValidationError as exc:
        for error in exc.errors():
            typer.echo(f"error: {'.'.join(str(p) for p in error['loc'])}: {error['msg']}", err=True)
        raise typer.Exit(2) from exc


def _or_exit(call: Callable[[], T]) -> T:
    from service.errors import DomainError

    try:
        return call()
    except DomainError as exc:
        typer.echo(f"error: {exc.code}: {exc.detail}", err=True)
        raise typer.Exit(1) from exc


if __name__ == "__main__":  # pragma: no cover
    app()
