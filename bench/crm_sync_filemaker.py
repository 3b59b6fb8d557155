"""FileMaker sync: a full pass over 50,000 records, then an incremental pass over 500 changes.

python-fmrest over real HTTPS against the fake FileMaker Data API (tools/comptoir_testing/fake_filemaker.py), into a
PostgreSQL database of its own (dropped afterwards). Each record has one contact in a portal. Prints durations.
Usage: ``.venv/bin/python bench/crm_sync_filemaker.py [--records 50000] [--changes 500] [--page-size 500]``.
"""

from __future__ import annotations

import argparse
import logging
import time
import uuid

from comptoir_common.db import make_engine, make_session_factory
from comptoir_common.migrations import upgrade
from comptoir_crm_sync import sync
from comptoir_crm_sync.models import Customer, OutboxMessage
from comptoir_crm_sync.settings import CrmSyncSettings
from comptoir_dev.registry import service
from comptoir_testing import infra
from comptoir_testing.fake_filemaker import FakeFileMaker, SteppingClock, add_clients_layout
from sqlalchemy import func, select


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--changes", type=int, default=500)
    parser.add_argument("--page-size", type=int, default=500)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    clock = SteppingClock()
    fake = FakeFileMaker(clock=clock)
    add_clients_layout(fake)
    started = time.perf_counter()
    for i in range(args.records):
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
                    {"ID_Contact": str(i), "Nom": f"Contact {i}", "Email": f"contact{i}@societe{i}.fr"}
                ]
            },
        )
        if i % 1000 == 999:
            clock.advance(1)
    print(f"fake FileMaker filled with {args.records} records in {time.perf_counter() - started:.1f} s")
    fake.start()

    server_url = infra.postgres_server_url()
    database = f"bench_{uuid.uuid4().hex[:6]}_crm_sync"
    url = infra.create_database(server_url, database)
    try:
        upgrade(service("crm_sync").migrations_dir, url)
        engine = make_engine(url, pool_size=2)
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
        requests_before = len(fake.requests)
        full = runner.run(full=True)
        assert full.ok, full.error
        print(
            f"full pass: {full.created} records created in {full.duration:.1f} s "
            f"({full.created / full.duration:.0f} records/s, {full.pages} pages, "
            f"{len(fake.requests) - requests_before} HTTP requests)"
        )

        clock.advance(600)
        layout = fake.layouts["Clients"]
        step = max(1, args.records // args.changes)
        for record_id in list(layout.records)[::step][: args.changes]:
            fake.update("Clients", record_id, {"RaisonSociale": f"Société {record_id} modifiée"})
        requests_before = len(fake.requests)
        incremental = runner.run(full=False)
        assert incremental.ok, incremental.error
        print(
            f"incremental pass: {incremental.updated} updated, {incremental.unchanged} unchanged in "
            f"{incremental.duration:.2f} s ({incremental.pages} pages, {len(fake.requests) - requests_before} HTTP requests)"
        )
        idle = runner.run(full=False)
        print(
            f"incremental pass with nothing new: {idle.duration:.2f} s ({idle.unchanged} re-read in the overlap)"
        )
        again = runner.run(full=True)
        print(f"full pass with nothing changed: {again.duration:.1f} s ({again.unchanged} unchanged)")
        with factory() as session:
            customers = session.scalar(select(func.count()).select_from(Customer))
            events = session.scalar(select(func.count()).select_from(OutboxMessage))
        print(f"directory: {customers} customers, {events} events queued")
        engine.dispose()
    finally:
        fake.stop()
        infra.drop_database(server_url, database)


if __name__ == "__main__":
    main()
