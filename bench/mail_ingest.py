"""Benchmark: mails per second from a Maildir into tickets, over the real processes (run by hand, prints numbers).

    flock /work/bench.lock .venv/bin/python bench/mail_ingest.py [--originals 1000] [--replies 1000]
        [--batch-size N] [--one-by-one] [--profile DIR]

Starts the tickets and mail-ingest services (their own PostgreSQL databases, a RabbitMQ vhost of their own), drops
originals and replies (the replies reference their original's Message-ID; every tenth original has a 20 KB
attachment) into the Maildir in one go (``--one-by-one``: mail by mail, so that passes see part of the lot and some
replies come before their original), replies shuffled among originals, and measures until every mail is taken in.
Then delivers the same mails again and checks that nothing new appears, and that every reply is in the ticket of its
original.

Besides the wall-clock rate it prints the CPU time per mail of each process (from /proc/<pid>/stat: user + system),
including the PostgreSQL backends serving the two databases, since the machine may be shared. ``--profile DIR``
records each service with py-spy during the first delivery (raw collapsed stacks in DIR).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from comptoir_common.db import make_engine, make_session_factory, session_scope
from comptoir_common.migrations import upgrade
from comptoir_dev.registry import service
from comptoir_testing import infra, mails
from comptoir_testing.fixtures import SmtpServer
from comptoir_testing.system import SystemUnderTest
from sqlalchemy import func, select, text

SERVICES = ("tickets", "mail_ingest")
TICK = os.sysconf("SC_CLK_TCK")


def build_mails(originals: int, replies: int) -> tuple[list[bytes], list[tuple[str, str]]]:
    """The mails, shuffled, and (reply id, original id) of every reply."""
    start = datetime.now(UTC) - timedelta(hours=2)
    ids = [mails.new_message_id() for _ in range(originals)]
    pairs: list[tuple[str, str]] = []
    batch = []
    for index, message_id in enumerate(ids):
        date = start + timedelta(seconds=index)
        if index % 10 == 0:
            raw = mails.with_attachment(
                size=20_000, subject=f"Facture {index}", sender=f"c{index}@client.example"
            )
            raw = raw.replace(b"Message-ID: <", b"X-Old: <", 1)
            raw = f"Message-ID: {message_id}\r\n".encode() + raw
        else:
            raw = mails.simple(
                sender=f"client{index}@client.example",
                subject=f"Demande {index}",
                message_id=message_id,
                date=date,
            )
        batch.append(raw)
    for index in range(replies):
        original = random.randrange(originals)
        reply_id = mails.new_message_id()
        pairs.append((reply_id.strip("<>"), ids[original].strip("<>")))
        batch.append(
            mails.simple(
                sender=f"client{original}@client.example",
                message_id=reply_id,
                subject=f"Re: Demande {original}",
                in_reply_to=ids[original],
                references=ids[original],
                date=start + timedelta(seconds=originals + index),
                body=f"Précision {index}",
            )
        )
    random.shuffle(batch)  # replies arrive mixed with (and sometimes before) their originals
    return batch, pairs


def deliver_one_by_one(maildir: Path, files: dict[str, bytes]) -> None:
    """Each mail moved into ``new/`` on its own, as a mail server delivers: passes see part of the lot, and some
    replies are taken in before their original."""
    staging = maildir / "tmp"
    staging.mkdir(exist_ok=True)
    for name, raw in files.items():
        (staging / name).write_bytes(raw)
    for name in files:
        os.rename(staging / name, maildir / "new" / name)


def deliver_at_once(maildir: Path, files: dict[str, bytes]) -> None:
    """Every mail appears in ``new/`` at the same instant (a folder swapped in): one pass sees the whole lot."""
    staging = maildir / "new.staging"
    staging.mkdir()
    for name, raw in files.items():
        (staging / name).write_bytes(raw)
    os.rename(staging, maildir / "new")  # replaces the empty new/ atomically


def replies_threaded(session, pairs: list[tuple[str, str]]) -> int:
    from comptoir_tickets.models import EmailIntake

    ticket_of = dict(session.execute(select(EmailIntake.rfc_message_id, EmailIntake.ticket_id)).all())
    return sum(1 for reply, original in pairs if ticket_of.get(reply) == ticket_of.get(original) is not None)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


class CpuMeter:
    """CPU seconds spent by each service process and by the PostgreSQL backends of the benchmark's databases."""

    def __init__(self, sut: SystemUnderTest, server_url: str, databases: list[str]):
        self.sut = sut
        self.engine = make_engine(server_url.rsplit("/", 1)[0] + "/postgres", pool_size=1)
        self.databases = databases
        self.seen_backends: dict[int, float] = {}

    def _backend_pids(self) -> list[int]:
        with self.engine.connect() as connection:
            return [
                row[0]
                for row in connection.execute(
                    text("SELECT pid FROM pg_stat_activity WHERE datname = ANY(:names)"),
                    {"names": self.databases},
                )
            ]

    def sample(self) -> dict[str, float]:
        result = {key: cpu_seconds(p.pid) for key, p in self.sut.processes.items()}
        for pid in self._backend_pids():
            self.seen_backends[pid] = max(self.seen_backends.get(pid, 0.0), cpu_seconds(pid))
        result["postgres"] = sum(self.seen_backends.values())
        return result

    def close(self) -> None:
        self.engine.dispose()


def wait_done(factory, expected: int, meter: CpuMeter, timeout: float = 900.0) -> float:
    from comptoir_mail_ingest.models import RawMail

    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    last_print = 0.0
    while time.monotonic() < deadline:
        with session_scope(factory) as session:
            pending = session.scalar(
                select(func.count()).select_from(RawMail).where(RawMail.status == "pending")
            )
            total = session.scalar(select(func.count()).select_from(RawMail))
        meter.sample()  # catch the backends while they live
        if total >= expected and pending == 0:
            return time.perf_counter() - started
        if time.monotonic() - last_print > 5:
            last_print = time.monotonic()
            print(f"  … {total - pending}/{expected} processed after {time.perf_counter() - started:.0f} s")
        time.sleep(0.05)
    raise SystemExit(f"not done after {timeout}s")


def start_profiles(sut: SystemUnderTest, directory: Path | None) -> list[subprocess.Popen]:
    if directory is None:
        return []
    directory.mkdir(parents=True, exist_ok=True)
    py_spy = Path(sys.executable).parent / "py-spy"
    if not py_spy.exists():
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    return [
        subprocess.Popen(
            [
                str(py_spy),
                "record",
                "--pid",
                str(sut.processes[key].pid),
                "--rate",
                "200",
                "--format",
                "raw",
                "-o",
                str(directory / f"{key}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for key in SERVICES
    ]


def stop_profiles(profiles: list[subprocess.Popen]) -> None:
    for profile in profiles:
        profile.send_signal(signal.SIGINT)
    for profile in profiles:
        profile.wait(timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--originals", type=int, default=1000)
    parser.add_argument("--replies", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=None, help="MAIL_INGEST_BATCH_SIZE")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy flame graphs into this folder")
    parser.add_argument(
        "--one-by-one", action="store_true", help="deliver the first time mail by mail instead of all at once"
    )
    args = parser.parse_args()

    server = infra.postgres_server_url()
    amqp_server, local = infra.amqp_server_uri()
    amqp_uri, vhost = infra.create_vhost(amqp_server, local)
    run = uuid.uuid4().hex[:6]
    names = {name: f"bench_{run}_{name}" for name in SERVICES}
    urls = {name: infra.create_database(server, db) for name, db in names.items()}
    for name, url in urls.items():
        upgrade(service(name).migrations_dir, url)
    smtp = SmtpServer()
    smtp.controller.start()
    workdir = Path(tempfile.mkdtemp(prefix="bench-mail-"))
    extra_env = {"MAIL_INGEST_MAILDIR_POLL_SECONDS": "0.2"}
    if args.batch_size:
        extra_env["MAIL_INGEST_BATCH_SIZE"] = str(args.batch_size)
    sut = SystemUnderTest(workdir, amqp_uri, urls, smtp.url, extra_env=extra_env)
    ingest_engine = make_engine(urls["mail_ingest"], pool_size=1)
    tickets_engine = make_engine(urls["tickets"], pool_size=1)
    meter = None
    try:
        for name in SERVICES:
            sut.start_service(name)
        sut.wait_healthy()
        meter = CpuMeter(sut, urls["tickets"], list(names.values()))
        maildir = workdir / "data" / "maildir"
        (maildir / "new").mkdir(parents=True, exist_ok=True)
        batch, pairs = build_mails(args.originals, args.replies)
        total = len(batch)
        print(
            f"{total} mails ({args.originals} new, {args.replies} replies, 1 in 10 originals with attachment)"
        )
        before = meter.sample()
        profiles = start_profiles(sut, args.profile)
        deliver = deliver_one_by_one if args.one_by_one else deliver_at_once
        deliver(maildir, {f"{index:06d}.eml": raw for index, raw in enumerate(batch)})
        factory = make_session_factory(ingest_engine)
        seconds = wait_done(factory, total, meter)
        after = meter.sample()
        stop_profiles(profiles)
        print(f"first delivery : {total} mails in {seconds:.2f} s = {total / seconds:.0f} mails/s")
        print("CPU per mail   : " + ", ".join(
            f"{key} {(after[key] - before.get(key, 0.0)) * 1000 / total:.2f} ms" for key in after
        ))  # fmt: skip

        from comptoir_tickets.models import EmailIntake, Ticket

        tickets_factory = make_session_factory(tickets_engine)
        with session_scope(tickets_factory) as session:
            tickets_count = session.scalar(select(func.count()).select_from(Ticket))
            threaded = replies_threaded(session, pairs)
        print(f"tickets created: {tickets_count} (expected {args.originals})")
        print(f"replies threaded: {threaded} of {args.replies} in the ticket of their original")

        while any((maildir / "new").iterdir()):  # acked on the "server" (moved to cur/)
            time.sleep(0.05)
        before = meter.sample()
        started = time.perf_counter()
        deliver_at_once(maildir, {f"again-{index:06d}.eml": raw for index, raw in enumerate(batch)})
        while any((maildir / "new").iterdir()):
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        after = meter.sample()
        with session_scope(tickets_factory) as session:
            again = session.scalar(select(func.count()).select_from(Ticket))
            intakes = session.scalar(select(func.count()).select_from(EmailIntake))
        print(
            f"redelivery     : {total} mails in {seconds:.2f} s; tickets {again} (new: {again - tickets_count}), "
            f"messages taken in {intakes} (duplicates: {intakes - total})"
        )
        print("CPU per mail   : " + ", ".join(
            f"{key} {(after[key] - before.get(key, 0.0)) * 1000 / total:.2f} ms" for key in after
        ))  # fmt: skip
        errors = [
            line
            for key in SERVICES
            for line in sut.log_path(key).read_text(errors="replace").splitlines()
            if " ERROR " in line or "Traceback" in line or "already-triggered" in line
        ]
        print(f"errors in logs : {len(errors)}" + "".join(f"\n  {line}" for line in errors[:10]))
        ok = (
            tickets_count == args.originals
            and threaded == args.replies
            and again == tickets_count
            and intakes == total
        )
        print("OK" if ok else "MISMATCH")
        return 0 if ok else 1
    finally:
        if meter is not None:
            meter.close()
        sut.stop()
        ingest_engine.dispose()
        tickets_engine.dispose()
        smtp.controller.stop()
        for db in names.values():
            infra.drop_database(server, db)
        infra.delete_vhost(vhost)


if __name__ == "__main__":
    sys.exit(main())
