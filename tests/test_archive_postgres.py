"""The incident archive on PostgreSQL: the same migrations, upserts and figures as on SQLite.

Uses ``INCIDENT_TEST_POSTGRES_URL`` when given (CI can point it at a service container);
otherwise starts Debian's PostgreSQL (``apt-get install postgresql``) on 127.0.0.1 in a
temporary directory and stops it by PID; skipped when neither is available.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from clients.archive import IncidentArchive
from tests.support import upgrade_database
from tests.test_followup import scripted_week
from tests.test_similar_incidents import assert_finds_the_closest_earlier_incidents

psycopg = pytest.importorskip("psycopg", reason="PostgreSQL needs the psycopg driver")


def _binary(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    given = os.environ.get("INCIDENT_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    initdb, postgres = _binary("initdb"), _binary("postgres")
    if not initdb or not postgres:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    # Not under pytest's temporary root: that is private to us, and the server may run as
    # another user.
    data = Path(tempfile.mkdtemp(prefix="incident-archive-pg-"))
    # PostgreSQL refuses to run as root; as root, run it as the postgres user Debian creates.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(data, "postgres")
    subprocess.run(
        [*as_user, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    port = _free_port()
    server = subprocess.Popen(
        [*as_user, postgres, "-D", str(data), "-h", "127.0.0.1", "-p", str(port), "-k", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until_ready(port, server)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


def _wait_until_ready(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"postgres exited with {server.returncode}")
        try:
            psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres").close()
            return
        except psycopg.OperationalError:
            time.sleep(0.2)
    raise RuntimeError("postgres did not accept connections within 30 s")


def test_archive_on_postgresql_migrates_upserts_and_aggregates(postgres_url: str, tmp_path: Path):
    archive = IncidentArchive(postgres_url)
    upgrade_database(postgres_url)
    upgrade_database(postgres_url)  # idempotent
    week = scripted_week()
    for record in week:
        archive.upsert(record)
        archive.upsert(record)
    metrics = archive.metrics(since=None, severity=None)
    assert metrics.incidents == 4 and metrics.open == 1
    assert metrics.mtta_seconds == 600 and metrics.mttr_seconds == 140 * 60
    assert metrics.by_severity == {"sev1": 1, "sev2": 2, "sev3": 1}
    stored = archive.get(week[1].id)
    assert stored is not None and stored.declared_at == week[1].declared_at
    assert stored.seconds_in_status == week[1].seconds_in_status
    assert [r.id for r in archive.search(text="INCIDENT 2")] == ["incident-2"]
    assert archive.search(text="incident_") == []


def test_similar_incidents_on_postgresql(postgres_url: str) -> None:
    """The same scenario as on SQLite, over PostgreSQL's full-text search (``english``)."""
    archive = IncidentArchive(postgres_url)
    upgrade_database(postgres_url)
    with archive.engine.begin() as connection:  # the first test's incidents are not history here
        connection.exec_driver_sql("DELETE FROM incidents")
    assert_finds_the_closest_earlier_incidents(archive)
