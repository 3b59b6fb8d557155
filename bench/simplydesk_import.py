"""Import of a Simplydesk export through ``comptoir import simplydesk``: 100,000 tickets with 500,000 messages.

Starts its own system (databases, vhost, every process), generates the export (CSV, Windows-1252, ``;``, the
messages in a second file), then measures: reading alone, the import (the real command in a process of its own:
duration, rates, CPU, peak memory), the time until the reports service has counted every imported ticket, and a
second run of the same export (idempotent: nothing changes). ``--profile DIR`` records py-spy flame data of the
command and of the tickets, reports and gateway processes during the import (``pip install py-spy``).
Usage: ``.venv/bin/python bench/simplydesk_import.py [--tickets 100000] [--messages-per-ticket 5]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).parent))
from _system import running_system  # noqa: E402
from comptoir_common.db import make_engine  # noqa: E402
from comptoir_common.ticket_import import ExportReader, Mapping  # noqa: E402
from comptoir_testing.simplydesk_export import MESSAGE_HEADERS, TICKET_HEADERS, bulk_export, write_csv  # noqa: E402
from create_tickets import cpu_seconds  # noqa: E402

PROFILED = ("tickets", "reports", "gateway")


def run_command(
    args: list[str], env: dict[str, str], log: Path, profile: Path | None, system, label: str
) -> tuple[float, float, int, int]:
    """Run ``comptoir import simplydesk``: (wall seconds, CPU seconds, peak RSS in kB, exit status)."""
    spies = []
    started = time.perf_counter()
    with log.open("w") as output:
        process = subprocess.Popen(args, env=env, stdout=output, stderr=subprocess.STDOUT)
        if profile is not None:
            targets = {"cli": process.pid} | {name: system.processes[name].pid for name in PROFILED}
            for name, pid in targets.items():
                spies.append(
                    subprocess.Popen(
                        [
                            str(Path(sys.executable).parent / "py-spy"),
                            "record",
                            "--pid",
                            str(pid),
                            "--rate",
                            "50",
                            "--format",
                            "raw",
                            "--nonblocking",
                            "--output",
                            str(profile / f"{label}-{name}.txt"),
                        ],  # fmt: skip
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    for spy in spies:
        if spy.poll() is None:
            spy.send_signal(signal.SIGINT)
    for spy in spies:
        try:
            spy.wait(timeout=60)
        except subprocess.TimeoutExpired:
            spy.kill()
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, process.returncode


def seed_customers(url: str, count: int) -> None:
    """The export's customers in the tickets service's read model, as crm_sync's events would have put them: the
    import matches them by name (the requesters stay unknown: crm_sync is asked about each of them, and has none)."""
    engine = make_engine(url, pool_size=1)
    try:
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO customers (id, name, active, updated_at) VALUES (:id, :name, true, now())"),
                [{"id": str(uuid.uuid4()), "name": f"Client {n}"} for n in range(count)],
            )
    finally:
        engine.dispose()


class DatabaseCpu:
    """CPU time of the PostgreSQL backends serving the system's databases (from /proc; backends that ended between
    two readings are missed, so it is a lower bound)."""

    def __init__(self, engine, databases: list[str]):
        self.engine = engine
        self.databases = databases
        self.start = self._read()

    def _read(self) -> dict[int, float]:
        with self.engine.connect() as connection:
            pids = connection.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = ANY(:names)"),
                {"names": self.databases},
            ).scalars()
            found = {}
            for pid in pids:
                try:
                    found[pid] = cpu_seconds(pid)
                except OSError:
                    continue
            return found

    def since_start(self) -> float:
        now = self._read()
        return sum(seconds - self.start.get(pid, 0.0) for pid, seconds in now.items())

    def restart(self) -> None:
        self.start = self._read()


def imported_in_reports(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM ticket_facts WHERE source = 'import'")).scalar()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--messages-per-ticket", type=int, default=5)
    parser.add_argument(
        "--customers", type=int, default=2000, help="customers named in the export (all known)"
    )
    parser.add_argument("--requesters", type=int, default=20_000, help="distinct requesters in the export")
    parser.add_argument("--batch-size", type=int, default=None, help="the command's default unless given")
    parser.add_argument("--profile", type=Path, default=None, help="folder for py-spy profiles")
    args = parser.parse_args()
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="comptoir-bench-import-"))
    started = time.perf_counter()
    ticket_rows, message_rows = bulk_export(
        args.tickets, args.messages_per_ticket, customers=args.customers, requesters=args.requesters
    )
    tickets_file = write_csv(
        folder / "tickets.csv", TICKET_HEADERS, ticket_rows, encoding="cp1252", delimiter=";"
    )
    messages_file = write_csv(
        folder / "messages.csv", MESSAGE_HEADERS, message_rows, encoding="cp1252", delimiter=";"
    )
    generated = time.perf_counter() - started
    size = (tickets_file.stat().st_size + messages_file.stat().st_size) / 1e6
    print(f"export generated in {generated:.1f} s ({size:.0f} MB) in {folder}", flush=True)

    started = time.perf_counter()
    cpu_started = time.process_time()
    with ExportReader(tickets_file, messages_file, Mapping()) as reader:
        read_tickets = sum(len(batch) for batch in reader.tickets(args.batch_size or 200))
    read = time.perf_counter() - started
    read_cpu = time.process_time() - cpu_started
    print(f"read in {read:.1f} s", flush=True)

    total_messages = args.tickets * (args.messages_per_ticket + 1)
    with running_system("import") as system:
        admin = system.create_user("bench.import@a6telecom.example", "admin")
        seed_customers(system.database_urls["tickets"], args.customers)
        command = [
            str(Path(sys.executable).parent / "comptoir"), "import", "simplydesk", str(tickets_file),
            "--messages", str(messages_file), "--url", system.base_url, "--email", admin["email"],
        ]  # fmt: skip
        if args.batch_size:
            command += ["--batch-size", str(args.batch_size)]
        env = os.environ | {"COMPTOIR_PASSWORD": admin["password"]}
        reports_db = make_engine(system.database_urls["reports"], pool_size=1)
        database_names = [url.rsplit("/", 1)[1].split("?")[0] for url in system.database_urls.values()]
        postgres = DatabaseCpu(reports_db, database_names)
        cpu_before = {name: cpu_seconds(process.pid) for name, process in system.processes.items()}
        started = time.perf_counter()
        imported, cli_cpu, peak_kb, status = run_command(
            command, env, folder / "first-run.log", args.profile, system, "first"
        )
        cpu = {name: cpu_seconds(p.pid) - cpu_before[name] for name, p in system.processes.items()}
        cpu["postgres"] = postgres.since_start()
        print((folder / "first-run.log").read_text()[-3000:], flush=True)
        if status != 0:
            raise SystemExit(f"the import failed ({status}); logs in {system.workdir}")
        # Reports: every imported ticket counted (they follow the events the import published).
        caught_up = None
        at_end = imported_in_reports(reports_db)
        while caught_up is None:
            count = imported_in_reports(reports_db)
            if count >= args.tickets:
                caught_up = time.perf_counter() - started
            elif time.perf_counter() - started > imported + 3600:
                break
            else:
                time.sleep(0.5)
        cpu_reports = {name: cpu_seconds(p.pid) - cpu_before[name] for name, p in system.processes.items()}
        cpu_reports["postgres"] = postgres.since_start()
        cpu_before = {name: cpu_seconds(process.pid) for name, process in system.processes.items()}
        postgres.restart()
        second, second_cpu, second_peak_kb, status = run_command(
            command, env, folder / "second-run.log", None, system, "second"
        )
        cpu_second = {name: cpu_seconds(p.pid) - cpu_before[name] for name, p in system.processes.items()}
        cpu_second["postgres"] = postgres.since_start()
        second_log = (folder / "second-run.log").read_text()
        reports_db.dispose()
        # Printed before the system is stopped (a slow teardown must not lose the figures).
        print()
        print(
            f"export               : {args.tickets} tickets, {args.tickets * args.messages_per_ticket} messages "
            f"(+ {args.tickets} descriptions), {args.customers} customers, {args.requesters} requesters; CSV cp1252 "
            f"';' in two files, {size:.0f} MB, generated in {generated:.1f} s"
        )
        print(
            f"reading only         : {read_tickets} tickets in {read:.1f} s ({read_tickets / read:,.0f} tickets/s, "
            f"CPU {read_cpu:.1f} s, in the benchmark's process)"
        )
        print(
            f"import               : {imported:.1f} s — {args.tickets / imported:,.0f} tickets/s, "
            f"{total_messages / imported:,.0f} messages/s"
        )
        print(f"importer (command)   : CPU {cli_cpu:.1f} s, peak memory {peak_kb / 1024:.0f} MB")
        print(
            "CPU during import    : "
            + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in cpu.items() if seconds)
        )
        print(
            "reports caught up    : "
            + (f"{caught_up:.1f} s after the start" if caught_up else "NOT within an hour")
            + f" ({at_end} of {args.tickets} counted when the import ended)"
        )
        print(
            "CPU until caught up  : "
            + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in cpu_reports.items() if seconds)
        )
        print(
            f"second run (no-op)   : {second:.1f} s, command CPU {second_cpu:.1f} s, peak {second_peak_kb / 1024:.0f} MB"
        )
        print(
            "CPU during 2nd run   : "
            + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in cpu_second.items() if seconds)
        )
        print(
            "second run summary   : "
            + " | ".join(
                line.strip() for line in second_log.splitlines() if "tickets créés" in line or "Durée" in line
            )
        )
        print(f"machine load (1 min) : {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores (shared machine)")
        print(f"benchmark's own peak : {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
