"""Benchmark of sign-in and revocation: argon2id cost, login latency through the gateway, and how fast a
deactivated user's or signed-out session's token is refused. Run by hand: ``.venv/bin/python bench/accounts.py``.

Starts the real processes (like the tests' ``system`` fixture) over fresh PostgreSQL databases and a RabbitMQ vhost,
prints numbers, and cleans up.
"""

from __future__ import annotations

import os
import resource
import statistics
import tempfile
import time
import uuid
from pathlib import Path


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bench_argon2(rounds: int = 20) -> None:
    from comptoir_auth.passwords import hash_password, verify_password

    stored = hash_password("Une-phrase-de-passe-longue")
    walls, cpus = [], []
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), _cpu()
        verify_password(stored, "Une-phrase-de-passe-longue")
        walls.append(time.perf_counter() - wall)
        cpus.append(_cpu() - cpu)
    print(
        f"argon2id verify (19 MiB, t=4, p=1): median {statistics.median(walls) * 1000:.1f} ms wall, "
        f"{statistics.median(cpus) * 1000:.1f} ms CPU over {rounds} rounds"
    )


def bench_domain_login(rounds: int = 20) -> None:
    """A whole sign-in in the auth service's domain code (password, throttle, session, audit, outbox) on PostgreSQL."""
    from comptoir_auth import signin, users
    from comptoir_common.db import make_engine, make_session_factory
    from comptoir_common.migrations import upgrade
    from comptoir_dev.registry import service
    from comptoir_testing import infra

    server = infra.postgres_server_url()
    name = f"bench_{uuid.uuid4().hex[:6]}_auth"
    url = infra.create_database(server, name)
    engine = make_engine(url, pool_size=2)
    try:
        upgrade(service("auth").migrations_dir, url)
        factory = make_session_factory(engine)
        with factory() as session:
            users.create_user(
                session, email="bench@x.example", name="B", role="agent", password="Une-phrase-assez-longue"
            )
            session.commit()
        walls, cpus = [], []
        for _ in range(rounds):
            wall, cpu = time.perf_counter(), _cpu()
            with factory() as session:
                signin.login(session, email="bench@x.example", password="Une-phrase-assez-longue")
                session.commit()
            walls.append(time.perf_counter() - wall)
            cpus.append(_cpu() - cpu)
        print(
            f"sign-in in the auth domain (PostgreSQL): median {statistics.median(walls) * 1000:.0f} ms wall, "
            f"{statistics.median(cpus) * 1000:.0f} ms CPU over {rounds}"
        )
    finally:
        engine.dispose()
        infra.drop_database(server, name)


def bench_system(rounds: int = 20) -> None:
    from comptoir_common.migrations import upgrade
    from comptoir_dev.registry import SERVICES, service
    from comptoir_testing import infra
    from comptoir_testing.fixtures import SmtpServer
    from comptoir_testing.system import SystemUnderTest

    run = uuid.uuid4().hex[:6]
    server = infra.postgres_server_url()
    databases = {}
    for info in SERVICES:
        name = f"bench_{run}_{info.name}".replace("-", "_")
        databases[info.name] = infra.create_database(server, name)
        upgrade(service(info.name).migrations_dir, databases[info.name])
    amqp_server, local = infra.amqp_server_uri()
    amqp_uri, vhost = infra.create_vhost(amqp_server, local)
    smtp = SmtpServer()
    smtp.controller.start()
    sut = SystemUnderTest(Path(tempfile.mkdtemp()), amqp_uri, databases, smtp.url)
    try:
        sut.start()
        admin = sut.create_user(f"admin.{run}@bench.example", "admin")
        people = [sut.create_user(f"p{n}.{run}@bench.example", "agent") for n in range(rounds)]
        with sut.client() as http:
            admin_headers = sut.login(http, admin["email"], admin["password"])
            latencies = []
            for person in people:
                started = time.perf_counter()
                person["headers"] = sut.login(http, person["email"], person["password"])
                latencies.append(time.perf_counter() - started)
            print(
                f"login through the gateway (API, no second factor): median {statistics.median(latencies) * 1000:.0f} ms, "
                f"max {max(latencies) * 1000:.0f} ms over {rounds}"
            )
            for label, revoke in (
                (
                    "deactivation",
                    lambda p: http.post(f"/api/v1/users/{p['id']}/deactivate", headers=admin_headers),
                ),
                (
                    "sign-out everywhere",
                    lambda p: http.post("/api/v1/auth/logout-everywhere", headers=p["headers"]),
                ),
            ):
                delays = []
                for person in people[: rounds // 2] if label == "deactivation" else people[rounds // 2 :]:
                    assert http.get("/api/v1/me", headers=person["headers"]).status_code == 200
                    revoke(person)
                    answered = time.perf_counter()
                    while http.get("/api/v1/me", headers=person["headers"]).status_code != 401:
                        if time.perf_counter() - answered > 10:
                            raise AssertionError("token still accepted after 10 s")
                    delays.append(time.perf_counter() - answered)
                print(
                    f"token refused after {label}: median {statistics.median(delays) * 1000:.0f} ms, "
                    f"max {max(delays) * 1000:.0f} ms after the call answered ({len(delays)} people)"
                )
    finally:
        sut.stop()
        smtp.controller.stop()
        infra.delete_vhost(vhost)
        for name in databases:
            infra.drop_database(server, f"bench_{run}_{name}".replace("-", "_"))


if __name__ == "__main__":
    os.environ.setdefault("COMPTOIR_LOG_LEVEL", "WARNING")
    bench_argon2()
    bench_domain_login()
    bench_system()
