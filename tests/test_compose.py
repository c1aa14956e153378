"""docker-compose.yml wired as documented, checked without a Docker engine: images at the
versions the tests run, healthchecks, start order, settings the code reads, search attributes.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices

from config import Settings
from devrun import REPO, temporal_binary
from workflows.lifecycle.visibility import search_attribute_specs

COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
# Read by docker compose itself (variable substitution), not by the product.
COMPOSE_ONLY = {"POSTGRES_PASSWORD"}


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    return services


def settings_variables() -> set[str]:
    """Every environment variable config.Settings reads."""
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(c) for c in alias.choices if str(c).isupper())
        elif isinstance(alias, str):
            names.add(alias)
        else:
            names.add(name.upper())
    return names


def dev_server_versions() -> dict[str, str]:
    """``temporal version 1.9.1 (Server 1.32.0, UI 2.54.1)`` -> server and UI versions."""
    text = subprocess.run(
        [temporal_binary(), "--version"], capture_output=True, text=True, check=True
    ).stdout
    found = re.search(r"Server ([\d.]+), UI ([\d.]+)", text)
    assert found, text
    return {"server": found[1], "ui": found[2]}


def test_temporal_images_match_the_dev_server_the_tests_use(services: dict[str, Any]) -> None:
    versions = dev_server_versions()
    minor = versions["server"].rsplit(".", 1)[0]
    assert services["temporal"]["image"] == f"temporalio/server:{versions['server']}"
    assert services["temporal-ui"]["image"] == f"temporalio/ui:{versions['ui']}"
    for one_shot in ("temporal-schema", "temporal-setup"):
        assert services[one_shot]["image"] == f"temporalio/admin-tools:{minor}"
    assert not any("auto-setup" in str(s.get("image")) for s in services.values())


def test_every_service_has_an_image_or_a_build(services: dict[str, Any]) -> None:
    for name, service in services.items():
        assert "image" in service or "build" in service, name
    assert services["worker"]["build"] == services["api"]["build"] == "."
    assert (REPO / "Dockerfile").exists()


def test_long_running_services_have_healthchecks(services: dict[str, Any]) -> None:
    one_shots = {n for n, s in services.items() if s.get("restart") == "no"}
    assert one_shots == {"temporal-schema", "temporal-setup", "db-upgrade"}
    for name, service in services.items():
        if name not in one_shots:
            assert service["healthcheck"]["test"], name


def test_services_start_in_order(services: dict[str, Any]) -> None:
    def waits_for(name: str) -> dict[str, str]:
        return {dep: c["condition"] for dep, c in services[name]["depends_on"].items()}

    assert waits_for("temporal-schema") == {"postgresql": "service_healthy"}
    assert waits_for("temporal") == {"temporal-schema": "service_completed_successfully"}
    assert waits_for("temporal-setup") == {"temporal": "service_healthy"}
    assert waits_for("temporal-ui") == {"temporal": "service_healthy"}
    assert waits_for("db-upgrade") == {"postgresql": "service_healthy"}
    for app in ("worker", "api"):
        assert waits_for(app) == {
            "temporal-setup": "service_completed_successfully",
            "db-upgrade": "service_completed_successfully",
        }
    # Each condition names a service that can meet it.
    for name, service in services.items():
        for dep, condition in (service.get("depends_on") or {}).items():
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep}'s health"
            else:
                assert services[dep].get("restart") == "no", f"{name} waits for {dep} to end"


def test_the_schema_step_sets_up_both_databases(services: dict[str, Any]) -> None:
    script = services["temporal-schema"]["command"][0]
    for step in ("create", "setup-schema -v 0.0", "update-schema -d"):
        assert f'temporal-sql-tool --db "$$name" {step}' in script
    assert "temporal:temporal temporal_visibility:visibility" in script
    assert services["temporal-schema"]["environment"]["SQL_PLUGIN"] == "postgres12"
    server = services["temporal"]["environment"]
    assert (server["DB"], server["POSTGRES_SEEDS"]) == ("postgres12", "postgresql")
    assert (server["DBNAME"], server["VISIBILITY_DBNAME"]) == ("temporal", "temporal_visibility")


def test_the_setup_step_registers_the_workflows_search_attributes(
    services: dict[str, Any],
) -> None:
    declared = services["temporal-setup"]["environment"]["INCIDENT_SEARCH_ATTRIBUTES"].split()
    assert declared == search_attribute_specs()
    assert "for pair in $$INCIDENT_SEARCH_ATTRIBUTES" in services["temporal-setup"]["command"][0]


def test_the_database_is_upgraded_by_the_one_command_before_the_app_starts(
    services: dict[str, Any],
) -> None:
    upgrade = services["db-upgrade"]
    assert upgrade["command"] == ["incident", "db", "upgrade"]
    assert upgrade["image"] == services["worker"]["image"] == services["api"]["image"]
    database = upgrade["environment"]["INCIDENT_DATABASE_URL"]
    for app in ("worker", "api"):
        assert services[app]["environment"]["INCIDENT_DATABASE_URL"] == database, app


def test_the_app_reads_only_settings_that_exist(services: dict[str, Any]) -> None:
    known = settings_variables()
    for app in ("worker", "api", "db-upgrade"):
        assert set(services[app]["environment"]) <= known, app
        assert services[app]["env_file"] == ".env"
    worker = services["worker"]["environment"]
    assert worker["WORKER_METRICS_PORT"] in services["worker"]["healthcheck"]["test"][-1]
    api = services["api"]["environment"]
    assert services["api"]["ports"] == [f"{api['API_PORT']}:{api['API_PORT']}"]
    assert f":{api['API_PORT']}/healthz" in services["api"]["healthcheck"]["test"][-1]


def test_env_example_names_every_setting_and_nothing_else() -> None:
    lines = ENV_EXAMPLE.read_text().splitlines()
    named = {m[1] for line in lines if (m := re.match(r"^#? ?([A-Z][A-Z0-9_]+)=", line))}
    known = settings_variables()
    assert named - COMPOSE_ONLY <= known, named - COMPOSE_ONLY - known
    assert known <= named, f"missing from .env.example: {sorted(known - named)}"


def test_ports_bind_where_documented(services: dict[str, Any]) -> None:
    assert services["temporal"]["ports"] == ["127.0.0.1:7233:7233"]
    assert services["temporal-ui"]["ports"] == ["127.0.0.1:8233:8080"]
    assert "ports" not in services["postgresql"] and "ports" not in services["worker"]


def test_the_image_runs_as_a_user_and_defaults_to_the_worker() -> None:
    dockerfile = Path(REPO / "Dockerfile").read_text()
    assert "\nUSER incident\n" in dockerfile
    assert 'CMD ["python", "worker.py"]' in dockerfile
