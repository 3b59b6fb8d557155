"""Import of a Simplydesk export through ``comptoir import simplydesk``: 100,000 tickets with 500,000 messages.

Starts its own system (databases, vhost, every process), generates the export (CSV, Windows-1252, ``;``), then
measures: reading alone, the import, and a second run of the same export (idempotent: nothing changes).
Usage: ``.venv/bin/python bench/simplydesk_import.py [--tickets 100000] [--messages-per-ticket 5]``.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _system import running_system  # noqa: E402
from comptoir_common.ticket_import import ExportReader, Mapping  # noqa: E402
from comptoir_dev import simplydesk_import  # noqa: E402
from comptoir_testing.simplydesk_export import MESSAGE_HEADERS, TICKET_HEADERS, bulk_export, write_csv  # noqa: E402
from create_tickets import cpu_seconds  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--messages-per-ticket", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=200)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="comptoir-bench-import-"))
    started = time.perf_counter()
    ticket_rows, message_rows = bulk_export(args.tickets, args.messages_per_ticket)
    tickets_file = write_csv(
        folder / "tickets.csv", TICKET_HEADERS, ticket_rows, encoding="cp1252", delimiter=";"
    )
    messages_file = write_csv(
        folder / "messages.csv", MESSAGE_HEADERS, message_rows, encoding="cp1252", delimiter=";"
    )
    generated = time.perf_counter() - started
    size = (tickets_file.stat().st_size + messages_file.stat().st_size) / 1e6

    started = time.perf_counter()
    with ExportReader(tickets_file, messages_file, Mapping()) as reader:
        read_tickets = sum(len(batch) for batch in reader.tickets(args.batch_size))
    read = time.perf_counter() - started

    with running_system("import") as system:
        admin = system.create_user("bench.import@a6telecom.example", "admin")
        common = dict(
            tickets_file=tickets_file,
            messages_file=messages_file,
            url=system.base_url,
            email=admin["email"],
            password=admin["password"],
            batch_size=args.batch_size,
            out=io.StringIO(),
        )
        cpu_before = {name: cpu_seconds(process.pid) for name, process in system.processes.items()}
        started = time.perf_counter()
        report = simplydesk_import.run(**common)
        imported = time.perf_counter() - started
        cpu = {
            name: cpu_seconds(process.pid) - cpu_before[name] for name, process in system.processes.items()
        }
        started = time.perf_counter()
        again = simplydesk_import.run(**common)
        second = time.perf_counter() - started
    total_messages = args.tickets * (args.messages_per_ticket + 1)
    print(
        f"export               : {args.tickets} tickets, {args.tickets * args.messages_per_ticket} messages "
        f"(+ {args.tickets} descriptions), {size:.0f} MB of CSV, generated in {generated:.1f} s"
    )
    print(
        f"reading only         : {read_tickets} tickets in {read:.1f} s ({read_tickets / read:,.0f} tickets/s)"
    )
    print(
        f"import               : {imported:.1f} s — {args.tickets / imported:,.0f} tickets/s, "
        f"{total_messages / imported:,.0f} messages/s (batches of {args.batch_size})"
    )
    print(f"  counts             : {report.counts}")
    print(f"second run (no-op)   : {second:.1f} s — {again.counts}")
    print("CPU during import    : " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in cpu.items()))
    print(f"machine load (1 min) : {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
