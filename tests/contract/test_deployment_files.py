"""Docker cannot run here; these checks keep the deployment files consistent with the code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_compose_runs_postgres_and_the_api_with_what_it_needs() -> None:
    services = compose()["services"]
    assert set(services) == {"db", "api"}
    db, api = services["db"], services["api"]
    assert db["image"].startswith("postgres:")
    assert "healthcheck" in db
    assert api["depends_on"]["db"]["condition"] == "service_healthy"
    env = api["environment"]
    assert env["DATABASE_URL"].startswith("postgresql://snp:")
    assert "@db:5432/snp" in env["DATABASE_URL"]
    assert env["SNP_ENV"] == "production"
    # The secret must be supplied: compose refuses to start without it.
    assert env["SNP_SECRET_KEY"].startswith("${SNP_SECRET_KEY:?")
    assert api["command"][:2] == ["snp", "serve"]
    assert "0.0.0.0" in api["command"]  # noqa: S104 - inside the container
    assert api["ports"] == ["8000:8000"]


def test_every_setting_the_compose_file_passes_is_one_the_service_reads() -> None:
    from service.config import Settings

    known = {field.alias for field in Settings.model_fields.values()} | {"SNP_WORKERS"}
    assert set(compose()["services"]["api"]["environment"]) <= known


def test_dockerfile_ships_the_migrations_and_serves() -> None:
    text = (ROOT / "Dockerfile").read_text()
    # The migrations are inside the package, which is installed, not linked.
    assert "COPY service ./service" in text
    assert (ROOT / "service" / "migrations" / "versions").is_dir()
    assert "RUN pip install . " in text
    assert 'CMD ["snp", "serve"' in text
    assert "USER snp" in text
    assert "/readyz" in text
