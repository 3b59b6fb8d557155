"""FileMaker sync: a full pass over 50,000 records, then an incremental pass over 500 changes, and how long until
the consumers' read models (tickets, reports, wiki: customers; mail-ingest: contact addresses; webhooks: every event
taken) are up to date.

python-fmrest over real HTTPS against the fake FileMaker Data API (tools/comptoir_testing/fake_filemaker.py). The
sync runs in this process (the code of the service's timer, ``FileMakerSync.run``) into the crm_sync database of a
running system (its own databases and vhost, every process): the crm_sync service's outbox relay publishes the
events and the consumers apply them. Each record has one contact in a portal; the modification times are spread
(one record a second) so that the incremental pass's overlap (2 min) re-reads a realistic few.

Figures: wall time and records/s of each pass, CPU of the sync thread per record (the fake server, in other
threads of this process, and PostgreSQL are counted apart), time until every read model has everything, and the
CPU each process used meanwhile. The machine is shared: compare CPU figures rather than wall times.
Usage: ``.venv/bin/python bench/crm_sync_filemaker.py [--records 50000] [--changes 500] [--page-size N]
[--no-consumers]`` (under ``flock /work/bench.lock``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _system import running_system  # noqa: E402
from comptoir_common.db import make_engine, make_session_factory  # noqa: E402
from comptoir_common.migrations import upgrade  # noqa: E402
from comptoir_crm_sync import sync  # noqa: E402
from comptoir_crm_sync.models import Customer, OutboxMessage  # noqa: E402
from comptoir_crm_sync.settings import CrmSyncSettings  # noqa: E402
from comptoir_dev.registry import service  # noqa: E402
from comptoir_testing import infra  # noqa: E402
from comptoir_testing.fake_filemaker import (
    FakeFileMaker,
    SteppingClock,
    add_clients_layout,
)  # noqa: E402
from create_tickets import cpu_seconds  # noqa: E402
from sqlalchemy import event, func, select, text  # noqa: E402

CONSUMERS = ("crm_sync", "tickets", "reports", "wiki", "mail_ingest", "webhooks")


def fill(fake: FakeFileMaker, clock: SteppingClock, records: int) -> None:
    for i in range(records):
        fake.create(
            "Clients",
            {
                "ID_Client": f"C{i:06}",
                "RaisonSociale": f"Société {i} SARL",
                "NumeroCompte": f"411{i:05}",
                "Adresse1": f"{i} rue de la République",
                "CodePostal": "69002",
                "Ville": "Lyon",
                "Telephone": "04 72 00 00 00",
                "Secteur": "Télécoms",
            },
            portals={
                "Contacts": [
                    {
                        "ID_Contact": str(i),
                        "Nom": f"Contact {i}",
                        "Email": f"contact{i}@societe{i}.fr",
                    }
                ]
            },
        )
        clock.advance(1)


class PostgresCpu:
    """CPU of the PostgreSQL backends serving one engine's connections (their pids, read from /proc)."""

    def __init__(self, engine):
        self.pids: set[int] = set()

        @event.listens_for(engine, "connect")
        def remember(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT pg_backend_pid()")
            self.pids.add(cursor.fetchone()[0])
            cursor.close()

    def seconds(self) -> float:
        total = 0.0
        for pid in self.pids:
            with contextlib.suppress(OSError):
                total += cpu_seconds(pid)
        return total


def timed_pass(
    runner: sync.FileMakerSync, pg: PostgresCpu, **kwargs
) -> tuple[sync.SyncReport, dict[str, float]]:
    wall, thread_cpu, process_cpu, pg_cpu = (
        time.perf_counter(),
        time.thread_time(),
        time.process_time(),
        pg.seconds(),
    )
    report = runner.run(**kwargs)
    assert report.ok, report.error
    sync_cpu = time.thread_time() - thread_cpu
    return report, {
        "wall": time.perf_counter() - wall,
        "sync_cpu": sync_cpu,
        "fake_cpu": time.process_time() - process_cpu - sync_cpu,
        "pg_cpu": pg.seconds() - pg_cpu,
    }


def describe(name: str, report: sync.SyncReport, figures: dict[str, float], records: int) -> None:
    per = records or 1
    print(
        f"{name}: {report.counts()} in {figures['wall']:.1f} s ({records / figures['wall']:,.0f} records/s, "
        f"{report.pages} pages) — CPU: sync {figures['sync_cpu']:.1f} s ({figures['sync_cpu'] / per * 1e3:.2f} ms"
        f"/record), PostgreSQL {figures['pg_cpu']:.1f} s ({figures['pg_cpu'] / per * 1e3:.2f} ms/record), "
        f"fake FileMaker {figures['fake_cpu']:.1f} s",
        flush=True,
    )


def wait_for(
    checks: dict[str, Callable[[], int]],
    target: dict[str, int],
    started: float,
    timeout: float,
) -> dict[str, float | None]:
    """Poll each check until it reaches its target; seconds since ``started`` at which each did (None: timeout)."""
    reached: dict[str, float | None] = dict.fromkeys(checks)
    last_print = 0.0
    while any(v is None for v in reached.values()):
        now = time.perf_counter()
        values = {}
        for name, check in checks.items():
            if reached[name] is None:
                values[name] = check()
                if values[name] >= target[name]:
                    reached[name] = time.perf_counter() - started
        if now - last_print >= 15:
            last_print = now
            print(
                f"  … {now - started:5.0f} s: "
                + ", ".join(f"{k} {v}/{target[k]}" for k, v in values.items()),
                flush=True,
            )
        if now - started > timeout:
            break
        time.sleep(0.5)
    return reached


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--changes", type=int, default=500)
    parser.add_argument("--page-size", type=int, default=CrmSyncSettings().sync_page_size)
    parser.add_argument("--no-consumers", action="store_true", help="the sync alone, without the system")
    parser.add_argument("--drain-timeout", type=float, default=1200.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    clock = SteppingClock()
    fake = FakeFileMaker(clock=clock)
    add_clients_layout(fake)
    started = time.perf_counter()
    fill(fake, clock, args.records)
    print(
        f"fake FileMaker filled with {args.records} records in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    fake.start()
    with contextlib.ExitStack() as stack:
        if args.no_consumers:
            system = None
            server_url = infra.postgres_server_url()
            database = f"bench_{uuid.uuid4().hex[:6]}_crm_sync"
            url = infra.create_database(server_url, database)
            stack.callback(infra.drop_database, server_url, database)
            upgrade(service("crm_sync").migrations_dir, url)
        else:
            started = time.perf_counter()
            system = stack.enter_context(running_system("crmsync"))
            url = system.database_urls["crm_sync"]
            print(f"system started in {time.perf_counter() - started:.0f} s", flush=True)
        engine = make_engine(url, pool_size=2)
        stack.callback(engine.dispose)
        pg = PostgresCpu(engine)
        factory = make_session_factory(engine)
        settings = CrmSyncSettings(
            filemaker_url=fake.url,
            filemaker_user=fake.user,
            filemaker_password=fake.password,
            filemaker_database=fake.database,
            filemaker_verify_ssl=fake.ca_path,
            sync_page_size=args.page_size,
        )
        runner = sync.FileMakerSync(factory, settings)
        checks, engines, webhooks_seen = consumer_checks(system, engine) if system else ({}, [], 0)
        for other in engines:
            stack.callback(other.dispose)

        def phase(name, records, target, **kwargs):
            cpu_before = process_cpu(system)
            started = time.perf_counter()
            report, figures = timed_pass(runner, pg, **kwargs)
            describe(name, report, figures, records)
            if system is None:
                return
            reached = wait_for(
                {k: checks[k][kwargs["full"]] for k in checks},
                target,
                started,
                args.drain_timeout,
            )
            cpu = {k: v - cpu_before.get(k, 0.0) for k, v in process_cpu(system).items()}
            print(
                "  read models up to date after (from the start of the pass): "
                + ", ".join(f"{k} {'not in time' if v is None else f'{v:.0f} s'}" for k, v in reached.items())
            )
            events = report.created * 2 + report.updated * 2
            print(
                "  CPU meanwhile: "
                + ", ".join(f"{k} {v:.0f} s" for k, v in cpu.items() if k in CONSUMERS)
                + f" (for about {events} events)",
                flush=True,
            )

        n = args.records
        phase(
            "full pass",
            n,
            {
                "outbox": 0,
                "tickets": n,
                "reports": n,
                "wiki": n,
                "mail_ingest": n,
                "webhooks": webhooks_seen + 2 * n,
            },
            full=True,
        )

        clock.advance(3600)
        layout = fake.layouts["Clients"]
        step = max(1, n // args.changes)
        changed = list(layout.records)[::step][: args.changes]
        for record_id in changed:
            i = record_id - 1
            fake.update(
                "Clients",
                record_id,
                {"RaisonSociale": f"Société {i} modifiée"},
                portals={
                    "Contacts": [
                        {
                            "ID_Contact": str(i),
                            "Nom": f"Contact {i}",
                            "Email": f"nouveau{i}@societe{i}.fr",
                        }
                    ]
                },
            )
        k = len(changed)
        phase(
            f"incremental pass ({k} changes)",
            k,
            {
                "outbox": 0,
                "tickets": k,
                "reports": k,
                "wiki": k,
                "mail_ingest": k,
                "webhooks": webhooks_seen + 2 * n + 2 * k,
            },
            full=False,
        )
        report, figures = timed_pass(runner, pg, full=False)
        print(
            f"incremental pass with nothing new: {figures['wall']:.2f} s ({report.unchanged} re-read in the overlap)"
        )
        report, figures = timed_pass(runner, pg, full=True)
        describe("full pass with nothing changed", report, figures, n)
        with factory() as session:
            customers = session.scalar(select(func.count()).select_from(Customer))
            events = session.scalar(select(func.count()).select_from(OutboxMessage))
        print(f"directory: {customers} customers, {events} events in the outbox")
        print(f"machine load (1 min): {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores (shared machine)")
    fake.stop()


def process_cpu(system) -> dict[str, float]:
    if system is None:
        return {}
    return {name: cpu_seconds(process.pid) for name, process in system.processes.items()}


def consumer_checks(system, crm_engine):
    """name → {full: count of what the full pass brings, incremental: count of what the changes bring}."""
    engines = {
        name: make_engine(system.database_urls[name], pool_size=1) for name in CONSUMERS if name != "crm_sync"
    }

    def count(engine, sql):
        def run() -> int:
            with engine.connect() as connection:
                return int(connection.execute(text(sql)).scalar() or 0)

        return run

    def pending() -> int:
        with crm_engine.connect() as connection:
            left = connection.execute(text("SELECT count(*) FROM outbox WHERE published_at IS NULL")).scalar()
        return 0 if left == 0 else -int(left)  # reaches the target (0) once everything is published

    checks = {"outbox": {True: pending, False: pending}}
    for name in ("tickets", "reports", "wiki"):
        checks[name] = {
            True: count(engines[name], "SELECT count(*) FROM customers"),
            False: count(
                engines[name],
                "SELECT count(*) FROM customers WHERE name LIKE '%modifiée'",
            ),
        }
    # webhooks takes every crm_sync event (to deliver it to the subscriptions there are: none here).
    processed = "SELECT count(*) FROM processed_events WHERE consumer = 'webhooks.on_crm_sync_event'"
    webhooks_base = count(engines["webhooks"], processed)()
    checks["webhooks"] = {
        True: count(engines["webhooks"], processed),
        False: count(engines["webhooks"], processed),
    }
    checks["mail_ingest"] = {
        True: count(engines["mail_ingest"], "SELECT count(*) FROM contact_addresses"),
        False: count(
            engines["mail_ingest"],
            "SELECT count(*) FROM contact_addresses WHERE email LIKE 'nouveau%'",
        ),
    }
    return checks, list(engines.values()), webhooks_base


if __name__ == "__main__":
    main()
