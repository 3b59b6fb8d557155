"""deploy/systemd and deploy/supervisor: the no-container way on one server."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess

from comptoir_testing.deployment import ON_MAIN, REPO, env_prefix

SYSTEMD = REPO / "deploy" / "systemd"
SUPERVISOR = REPO / "deploy" / "supervisor" / "comptoir.conf"


def test_systemd_units_verify():
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is needed"
    units = [
        "comptoir@tickets.service",
        "comptoir-gateway.service",
        "comptoir-migrate.service",
        "comptoir.target",
    ]
    result = subprocess.run(
        [analyze, "verify", "--man=no", *units], cwd=SYSTEMD, capture_output=True, text=True, timeout=60
    )
    # This machine has no /opt/comptoir: the only complaint allowed is that the programs are not installed here.
    problems = [
        line for line in result.stderr.splitlines() if line.strip() and "is not executable" not in line
    ]
    assert not problems, result.stderr


def _systemd_unescape(value: str, instance: str) -> str:
    return value.replace("%i", instance).replace("$$", "$").replace("%%", "%")


def test_systemd_template_runs_the_package_of_the_instance():
    unit = configparser.RawConfigParser(strict=False)
    unit.read(SYSTEMD / "comptoir@.service")
    exec_start = unit["Service"]["ExecStart"]
    for instance, package in (("tickets", "comptoir_tickets"), ("tickets.2", "comptoir_tickets"),
                              ("mail_ingest.3", "comptoir_mail_ingest")):  # fmt: skip
        command = _systemd_unescape(exec_start, instance).replace("exec ", "echo ", 1)
        shell = command.split(" ", 2)
        out = subprocess.run(["/bin/sh", "-c", *re.findall(r"'([^']*)'", command), "comptoir", instance],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        assert shell[0] == "/bin/sh"
        assert out.strip() == f"/opt/comptoir/.venv/bin/python -m {package}"
    target = (SYSTEMD / "comptoir.target").read_text()
    wanted = set(re.findall(r"comptoir@([a-z_]+)\.service", target))
    assert wanted <= set(ON_MAIN) and {"auth", "tickets", "notifier"} <= wanted
    env = (SYSTEMD / "comptoir.env.example").read_text()
    for name in wanted:
        assert f"{env_prefix(name)}DATABASE_URL=" in env and f"{env_prefix(name)}HEALTH_PORT=" in env


def test_supervisor_programs():
    config = configparser.RawConfigParser()
    config.read(SUPERVISOR)
    programs = config["group:comptoir"]["programs"].split(",")
    assert programs[0] == "gateway" and set(programs[1:]) <= set(ON_MAIN)
    ports: list[range] = []
    for name in programs[1:]:
        section = config[f"program:{name}"]
        assert f"-m comptoir_{name}'" in section["command"]
        assert f"export {env_prefix(name)}HEALTH_PORT=%(process_num)d" in section["command"]
        start, count = int(section["numprocs_start"]), int(section["numprocs"])
        ports.append(range(start, start + count))
        assert section["process_name"] == "%(program_name)s-%(process_num)d"
    for first in ports:
        for second in ports:
            assert first is second or not set(first) & set(second), "health ports overlap"
