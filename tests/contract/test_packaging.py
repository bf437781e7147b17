"""A plain `pip install .` (a wheel, not the source tree) must run the service: its migrations and
reference data ship inside the package."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import zipfile
from pathlib import Path

import asyncpg

from tests import dbserver

ROOT = Path(__file__).resolve().parents[2]


async def schema_version(database: str) -> str:
    conn = await asyncpg.connect(database)
    try:
        version: str = await conn.fetchval("SELECT version_num FROM alembic_version")
        return version
    finally:
        await conn.close()


def test_a_wheel_installed_elsewhere_migrates_a_database(server_url: str, tmp_path: Path) -> None:
    built = subprocess.run(  # noqa: S603 - our own interpreter and project
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = tmp_path.glob("snp_service-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("service/migrations/versions/") and n.endswith(".py") for n in names)
    assert "service/reference/age_rules.csv" in names
    assert "service/fhir/ig/StructureDefinition-sas-cpts-slot-aggregator.json" in names
    installed = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(installed)

    database = asyncio.run(dbserver.create_database(server_url, "snp_wheel"))
    try:
        # From another directory, with only the installed copy of `service` importable (the
        # dependencies come from this environment).
        migrated = subprocess.run(  # noqa: S603
            [
                sys.executable,
                "-c",
                "import sys, service.migrate as m; assert 'site' in m.__file__; m.upgrade(sys.argv[1])",
                database,
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,
            env={"PYTHONPATH": str(installed), "PATH": "/usr/bin:/bin", "PYTHONSAFEPATH": "1"},
        )
        assert migrated.returncode == 0, migrated.stderr
        version = asyncio.run(schema_version(database))
        from service.migrate import head_revision

        assert version == head_revision()
    finally:
        asyncio.run(dbserver.drop_database(server_url, database))
