"""docker-compose.yml and the Dockerfile: structure always checked; ``docker compose config`` where it exists."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from urllib.parse import urlsplit

import yaml
from comptoir_testing.deployment import ALL_SERVICES, ON_MAIN, REPO, env_prefix

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
HEALTH_PORT = "9100"


def test_every_service_has_an_entry_running_its_package():
    for name, package in ALL_SERVICES.items():
        entry = SERVICES[name]
        assert entry["command"] == ["python", "-m", package], name
        if name not in ON_MAIN:
            # A package not on main yet must not start by default (its entry waits under the pending profile).
            assert entry["profiles"] == ["pending"], name
    assert SERVICES["gateway"]["command"] == ["python", "-m", "comptoir_gateway"]


def test_each_service_has_its_own_database_role_and_health_port():
    databases = SERVICES["postgres"]["environment"]["COMPTOIR_DATABASES"].split()
    for name in ALL_SERVICES:
        prefix = env_prefix(name)
        env = SERVICES[name]["environment"]
        url = urlsplit(env[f"{prefix}DATABASE_URL"])
        assert url.scheme == "postgresql" and url.hostname == "postgres"
        assert url.username == name and url.path == f"/{name}"
        assert name in databases
        assert f"{prefix}DB_PASSWORD" in SERVICES["postgres"]["environment"]
        assert env[f"{prefix}HEALTH_PORT"] == HEALTH_PORT
        assert f":{HEALTH_PORT}/healthz" in " ".join(SERVICES[name]["healthcheck"]["test"])


def test_scaling_by_design_no_fixed_names_or_ports_per_instance():
    publishing = {name for name, entry in SERVICES.items() if entry.get("ports")}
    assert publishing == {"proxy", "rabbitmq", "mailpit", "prometheus", "grafana"}
    for name in ("prometheus", "grafana"):
        assert SERVICES[name]["profiles"] == ["monitoring"]
        assert all(port.startswith("127.0.0.1:") for port in SERVICES[name]["ports"])
    for name, entry in SERVICES.items():
        assert "container_name" not in entry, name
        assert "hostname" not in entry or name == "rabbitmq", name
    assert "gateway:8000" in (REPO / "deploy/docker/nginx.conf").read_text()
    for name in [*ALL_SERVICES, "gateway"]:
        assert "healthcheck" in SERVICES[name] and SERVICES[name]["restart"] == "unless-stopped"


def test_migrations_run_once_before_the_services():
    assert SERVICES["migrate"]["command"] == ["comptoir", "migrate"]
    assert SERVICES["migrate"]["restart"] == "no"
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert SERVICES["migrate"]["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
    for name in [*ALL_SERVICES, "gateway"]:
        assert SERVICES[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name


def test_infrastructure_rabbitmq_quorum_mail_catcher_secrets():
    conf = (REPO / "deploy/docker/rabbitmq.conf").read_text()
    assert re.search(r"^default_queue_type\s*=\s*quorum$", conf, re.M)
    assert "rabbitmq_prometheus" in (REPO / "deploy/docker/enabled_plugins").read_text()
    env = SERVICES["tickets"]["environment"]
    assert env["SMTP_URL"].endswith("smtp://mailpit:1025}")
    assert env["COMPTOIR_SECRET_KEY"].startswith("${COMPTOIR_SECRET_KEY:?")  # no default secret
    assert "mailpit" in SERVICES["mailpit"]["image"] and SERVICES["postgres"]["image"].startswith("postgres:")


def test_dockerfile_one_image_non_root():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "pip install ." in dockerfile
    assert re.search(r"^USER comptoir$", dockerfile, re.M)
    for folder in ("common", "gateway", "services", "tools"):
        assert f"COPY {folder} ./{folder}" in dockerfile
    assert ".venv" in (REPO / ".dockerignore").read_text()


def test_postgres_init_script_creates_a_role_and_database_per_service(postgres_server, run_id):
    """The init script, run for real against this run's PostgreSQL server (twice: it is idempotent)."""
    from sqlalchemy import create_engine, text

    server = urlsplit(postgres_server)
    names = [f"ct_{run_id}_initdb_a", f"ct_{run_id}_initdb_b"]
    env = os.environ | {
        "PGHOST": server.hostname or "127.0.0.1",
        "PGPORT": str(server.port or 5432),
        "PGPASSWORD": server.password or "",
        "POSTGRES_USER": server.username or "postgres",
        "COMPTOIR_DATABASES": " ".join(names),
        f"{names[0].upper()}_DB_PASSWORD": "s3cret-a",
    }
    script = str(REPO / "deploy/docker/postgres-init.sh")
    engine = create_engine(
        postgres_server.replace("postgresql://", "postgresql+psycopg2://"), isolation_level="AUTOCOMMIT"
    )
    try:
        for _ in range(2):
            subprocess.run(["bash", script], env=env, check=True, capture_output=True, timeout=60)
        with engine.connect() as connection:
            for name in names:
                owner = connection.execute(
                    text("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = :n"), {"n": name}
                ).scalar()
                assert owner == name
    finally:
        with engine.connect() as connection:
            for name in names:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
                connection.execute(text(f'DROP ROLE IF EXISTS "{name}"'))
        engine.dispose()


def test_docker_compose_config_where_the_plugin_exists():
    """The structural tests above always run; the real parser too when the compose plugin is installed."""
    docker = shutil.which("docker")
    has_plugin = (
        docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    )
    if not has_plugin:
        # No compose plugin on this machine (checked, not skipped): YAML anchors and merges must still resolve.
        assert all(isinstance(entry, dict) and "<<" not in entry for entry in SERVICES.values())
        return
    result = subprocess.run(
        [
            docker,
            "compose",
            "-f",
            str(REPO / "docker-compose.yml"),
            "--profile",
            "pending",
            "config",
            "--quiet",
        ],
        env=os.environ | {"COMPTOIR_SECRET_KEY": "test-only"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
