"""Service settings, read from the environment (and a local `.env` in development).

One flat Settings object. The token-signing secret has no default: `make run` writes a random one
into `.env` on first use, deployments pass `SNP_SECRET_KEY`.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.db import Timeouts
from service.destinations import WebhookPolicy, numeric_resolver, system_resolver

# Values people paste from examples; refused as a signing secret outside development.
PLACEHOLDER_SECRETS = frozenset(
    {"", "changeme", "change-me", "secret", "dev", "development", "placeholder", "please-change-me"}
)
MIN_SECRET_LENGTH = 32


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    env: Environment = Field(default=Environment.production, alias="SNP_ENV")
    secret_key: SecretStr = Field(alias="SNP_SECRET_KEY")
    # No DATABASE_URL: the embedded PostgreSQL server is started in `data_dir`.
    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    data_dir: Path = Field(default=Path(".data"), alias="SNP_DATA_DIR")
    # Connections a worker keeps open, and how many more a burst may open (each closed again once
    # returned: a new PostgreSQL backend and statements prepared again, about a millisecond of CPU
    # on each side). 20 kept covers a worker's usual concurrency without that churn; the most a
    # worker holds (30) is what it was.
    db_pool_size: int = Field(default=20, ge=1, alias="SNP_DB_POOL_SIZE")
    db_max_overflow: int = Field(default=10, ge=0, alias="SNP_DB_MAX_OVERFLOW")
    # Waiting for the database: past these, a request answers 503 + Retry-After (service.db.Timeouts).
    db_connect_timeout_seconds: float = Field(default=3.0, gt=0, le=60, alias="SNP_DB_CONNECT_TIMEOUT_SECONDS")
    db_pool_timeout_seconds: float = Field(default=3.0, gt=0, le=60, alias="SNP_DB_POOL_TIMEOUT_SECONDS")
    db_statement_timeout_seconds: float = Field(default=5.0, gt=0, le=600, alias="SNP_DB_STATEMENT_TIMEOUT_SECONDS")
    db_lock_timeout_seconds: float = Field(default=3.0, gt=0, le=600, alias="SNP_DB_LOCK_TIMEOUT_SECONDS")
    token_ttl_seconds: int = Field(default=3600, ge=60, le=86400, alias="SNP_TOKEN_TTL_SECONDS")
    # Principals kept per worker between requests, emptied through LISTEN/NOTIFY on every change
    # (service.accounts.principals); an entry lives at most this long; 0: ask the database each time.
    principal_cache_seconds: float = Field(default=60.0, ge=0, le=3600, alias="SNP_PRINCIPAL_CACHE_SECONDS")
    log_level: str = Field(default="INFO", alias="SNP_LOG_LEVEL")
    # Argon2 cost; tests lower it so that creating users stays fast.
    argon2_time_cost: int = Field(default=3, ge=1, alias="SNP_ARGON2_TIME_COST")
    argon2_memory_kib: int = Field(default=65536, ge=8, alias="SNP_ARGON2_MEMORY_KIB")
    # The webhook relay runs inside `snp serve` unless disabled (then run `snp relay`).
    relay_enabled: bool = Field(default=True, alias="SNP_RELAY_ENABLED")
    relay_interval_seconds: float = Field(default=1.0, gt=0, alias="SNP_RELAY_INTERVAL_SECONDS")
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, alias="SNP_WEBHOOK_TIMEOUT_SECONDS")
    webhook_max_attempts: int = Field(default=8, ge=1, alias="SNP_WEBHOOK_MAX_ATTEMPTS")
    webhook_backoff_base_seconds: float = Field(default=2.0, gt=0, alias="SNP_WEBHOOK_BACKOFF_BASE_SECONDS")
    webhook_backoff_max_seconds: float = Field(default=3600.0, gt=0, alias="SNP_WEBHOOK_BACKOFF_MAX_SECONDS")
    # Where webhooks may go (service.destinations): https only unless this is set (or in
    # development); loopback hosts only when listed here (comma-separated), or in development.
    webhook_allow_http: bool = Field(default=False, alias="SNP_WEBHOOK_ALLOW_HTTP")
    webhook_allowed_hosts: str = Field(default="", alias="SNP_WEBHOOK_ALLOWED_HOSTS")
    # False: webhook hosts must be IP addresses (no DNS lookup at all), e.g. on an isolated network.
    webhook_resolve_names: bool = Field(default=True, alias="SNP_WEBHOOK_RESOLVE_NAMES")
    # After a rotation, webhooks are signed with the old secret too for this long.
    webhook_secret_grace_hours: int = Field(default=24, ge=0, le=720, alias="SNP_WEBHOOK_SECRET_GRACE_HOURS")
    # Messages to patients (booking confirmations and cancellations, with their consent): e-mail
    # through this SMTP server, SMS through this HTTP gateway (service.notifications.patients).
    # A channel without its provider is not offered; its messages are marked skipped.
    smtp_host: str | None = Field(default=None, alias="SNP_SMTP_HOST")
    smtp_port: int = Field(default=587, ge=1, le=65535, alias="SNP_SMTP_PORT")
    smtp_username: str | None = Field(default=None, alias="SNP_SMTP_USERNAME")
    smtp_password: SecretStr | None = Field(default=None, alias="SNP_SMTP_PASSWORD")
    smtp_starttls: bool = Field(default=True, alias="SNP_SMTP_STARTTLS")
    smtp_from: str = Field(default="CPTS <no-reply@localhost>", alias="SNP_SMTP_FROM")
    sms_gateway_url: str | None = Field(default=None, alias="SNP_SMS_GATEWAY_URL")
    sms_gateway_token: SecretStr | None = Field(default=None, alias="SNP_SMS_GATEWAY_TOKEN")
    sms_sender: str = Field(default="CPTS", max_length=11, alias="SNP_SMS_SENDER")
    patient_message_max_attempts: int = Field(default=5, ge=1, le=20, alias="SNP_PATIENT_MESSAGE_MAX_ATTEMPTS")
    patient_message_timeout_seconds: float = Field(
        default=10.0, gt=0, le=60, alias="SNP_PATIENT_MESSAGE_TIMEOUT_SECONDS"
    )
    # Where people reach the console from outside (links the SAS shows its regulators), e.g.
    # https://snp.cpts-exemple.fr; unset: the links use the address the request came to.
    public_url: str | None = Field(default=None, alias="SNP_PUBLIC_URL")
    # The SAS's FHIR base, to which the appointments of the requests it regulated are sent
    # (INT_R03, service.fhir.appointments); unset: nothing is sent. With the client certificate
    # (IGC-Santé) and key the SAS requires for mutual TLS, when set.
    sas_base_url: str | None = Field(default=None, alias="SNP_SAS_BASE_URL")
    sas_client_cert: Path | None = Field(default=None, alias="SNP_SAS_CLIENT_CERT")
    sas_client_key: Path | None = Field(default=None, alias="SNP_SAS_CLIENT_KEY")
    # The authorities the SAS's server certificate is checked against (PEM), instead of the system's.
    sas_ca_certs: Path | None = Field(default=None, alias="SNP_SAS_CA_CERTS")
    # Our Appointment identifiers' system (Appointment.identifier.system); by default the public
    # URL's /fhir/sid/appointment.
    sas_appointment_system: str | None = Field(default=None, alias="SNP_SAS_APPOINTMENT_SYSTEM")
    # The reports process's socket (service.reports_process), which `snp serve` sets for its
    # workers; unset: a worker computes the reports itself.
    reports_socket: str | None = Field(default=None, alias="SNP_REPORTS_SOCKET")
    # Bodies above this are refused (413) before they are read; above the second bound, only an
    # authenticated caller's body is read (service.body_limit).
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, alias="SNP_MAX_BODY_BYTES")
    unauthenticated_body_bytes: int = Field(default=64 * 1024, ge=1024, alias="SNP_UNAUTHENTICATED_BODY_BYTES")
    # Failed logins: this many within 15 minutes lock the account, or the client address, for 15.
    login_max_failures_per_account: int = Field(default=5, ge=1, alias="SNP_LOGIN_MAX_FAILURES_PER_ACCOUNT")
    login_max_failures_per_address: int = Field(default=50, ge=1, alias="SNP_LOGIN_MAX_FAILURES_PER_ADDRESS")
    # /metrics shows business volumes: it answers only `Authorization: Bearer <this token>` (open
    # without a token in development only).
    metrics_token: SecretStr | None = Field(default=None, alias="SNP_METRICS_TOKEN")
    # Identity fields of requests older than this are purged by `snp purge`.
    retention_days: int = Field(default=365, ge=1, alias="SNP_RETENTION_DAYS")

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> Settings:
        if self.env is Environment.development:
            return self
        secret = self.secret_key.get_secret_value()
        if secret.lower() in PLACEHOLDER_SECRETS or len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"SNP_SECRET_KEY must be a random value of at least {MIN_SECRET_LENGTH} characters "
                f"outside development mode (SNP_ENV={self.env.value})"
            )
        return self


def db_timeouts(settings: Settings) -> Timeouts:
    return Timeouts(
        connect_seconds=settings.db_connect_timeout_seconds,
        pool_seconds=settings.db_pool_timeout_seconds,
        statement_seconds=settings.db_statement_timeout_seconds,
        lock_seconds=settings.db_lock_timeout_seconds,
    )


def webhook_policy(settings: Settings) -> WebhookPolicy:
    development = settings.env is Environment.development
    return WebhookPolicy(
        allow_http=settings.webhook_allow_http or development,
        allow_loopback=development,
        allowed_hosts=frozenset(h.strip().lower() for h in settings.webhook_allowed_hosts.split(",") if h.strip()),
        resolver=system_resolver if settings.webhook_resolve_names else numeric_resolver,
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()  # values come from the environment


async def _app_settings(request: Request) -> Settings:  # async: no thread-pool hop
    settings = request.app.state.settings
    assert isinstance(settings, Settings)
    return settings


SettingsDep = Annotated[Settings, Depends(_app_settings)]
