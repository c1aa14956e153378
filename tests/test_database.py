"""The incident database's schema comes from one command, ``incident db upgrade``; the worker
and the API only check it, and refuse to start on a database behind the code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect

from clients.archive import MIGRATIONS, IncidentArchive
from devrun import OWN_SETTINGS, REPO

HEAD = "0006"  # the newest migration in clients/migrations/versions
TABLES = {"incidents", "public_incidents", "status_components", "status_subscribers"}


def run(argv: list[str], database: str) -> subprocess.CompletedProcess[str]:
    """A product command as an operator runs it, with none of this shell's own settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_SETTINGS)}
    env |= {
        "INCIDENT_DATABASE_URL": database,
        "SLACK_API_URL": "http://127.0.0.1:9/api/",  # never called: they stop before Slack
        "TEMPORAL_ADDRESS": "127.0.0.1:9",
    }
    return subprocess.run(
        [sys.executable, *argv], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )


def upgrade(database: str) -> subprocess.CompletedProcess[str]:
    return run(["-m", "starter.cli", "db", "upgrade"], database)


def test_db_upgrade_brings_a_new_database_to_the_newest_schema(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path}/incidents.db"
    first, again = upgrade(database), upgrade(database)
    assert first.returncode == 0, first.stderr
    assert again.returncode == 0, again.stderr  # idempotent
    assert f"incident database at revision {HEAD}" in again.stdout
    archive = IncidentArchive(database)
    assert archive.revision() == HEAD
    # The status page's tables are in the same chain: one command covers both stores.
    assert set(inspect(archive.engine).get_table_names()) >= TABLES
    archive.check_current()


def at_revision(database: str, revision: str) -> None:
    """A database some releases old: migrated to ``revision`` only."""
    archive = IncidentArchive(database)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with archive.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


@pytest.mark.parametrize("revision", [None, "0002"])
@pytest.mark.parametrize(
    ("who", "argv"), [("worker", ["worker.py"]), ("api", ["-m", "starter.api"])]
)
def test_worker_and_api_refuse_a_database_behind_the_code(
    tmp_path: Path, who: str, argv: list[str], revision: str | None
) -> None:
    database = f"sqlite:///{tmp_path}/incidents.db"
    if revision:
        at_revision(database, revision)
    refused = run(argv, database)
    assert refused.returncode == 2, refused.stderr
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith(f"{who}: error: the incident database ")
    assert f"is at revision {revision or 'none'}, this build needs {HEAD}" in line
    assert line.endswith("run `incident db upgrade`")
    assert upgrade(database).returncode == 0
    assert IncidentArchive(database).revision() == HEAD
