"""Benchmark: mails per second from a Maildir into tickets, over the real processes (run by hand, prints numbers).

    .venv/bin/python bench/mail_ingest.py [--originals 1000] [--replies 1000]

Starts the tickets and mail-ingest services (their own PostgreSQL databases, a RabbitMQ vhost of their own), drops
originals and replies (the replies reference their original's Message-ID; every tenth mail has a 20 KB
attachment) into the Maildir in one go, replies shuffled among originals, and measures until every mail is taken
in. Then delivers the same mails again and checks that nothing new appears, and that every reply is threaded.
"""

from __future__ import annotations

import argparse
import random
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
from sqlalchemy import func, select

SERVICES = ("tickets", "mail_ingest")


def build_mails(originals: int, replies: int) -> list[bytes]:
    start = datetime.now(UTC) - timedelta(hours=2)
    ids = [mails.new_message_id() for _ in range(originals)]
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
        batch.append(
            mails.simple(
                sender=f"client{original}@client.example",
                subject=f"Re: Demande {original}",
                in_reply_to=ids[original],
                references=ids[original],
                date=start + timedelta(seconds=originals + index),
                body=f"Précision {index}",
            )
        )
    random.shuffle(batch)  # replies arrive mixed with (and sometimes before) their originals
    return batch


def wait_done(factory, expected: int, timeout: float = 600.0) -> float:
    from comptoir_mail_ingest.models import RawMail

    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(factory) as session:
            pending = session.scalar(
                select(func.count()).select_from(RawMail).where(RawMail.status == "pending")
            )
            total = session.scalar(select(func.count()).select_from(RawMail))
        if total >= expected and pending == 0:
            return time.perf_counter() - started
        time.sleep(0.05)
    raise SystemExit(f"not done after {timeout}s")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--originals", type=int, default=1000)
    parser.add_argument("--replies", type=int, default=1000)
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
    sut = SystemUnderTest(
        workdir,
        amqp_uri,
        urls,
        smtp.url,
        extra_env={"MAIL_INGEST_MAILDIR_POLL_SECONDS": "0.2", "MAIL_INGEST_BATCH_SIZE": "200"},
    )
    ingest_engine = make_engine(urls["mail_ingest"], pool_size=1)
    tickets_engine = make_engine(urls["tickets"], pool_size=1)
    try:
        for name in SERVICES:
            sut.start_service(name)
        sut.wait_healthy()
        maildir = workdir / "data" / "maildir" / "new"
        maildir.mkdir(parents=True, exist_ok=True)
        batch = build_mails(args.originals, args.replies)
        total = len(batch)
        print(
            f"{total} mails ({args.originals} new, {args.replies} replies, 1 in 10 originals with attachment)"
        )
        for index, raw in enumerate(batch):
            (maildir / f"{index:06d}.eml").write_bytes(raw)
        factory = make_session_factory(ingest_engine)
        seconds = wait_done(factory, total)
        print(f"first delivery : {total} mails in {seconds:.2f} s = {total / seconds:.0f} mails/s")

        from comptoir_tickets.models import EmailIntake, Ticket

        tickets_factory = make_session_factory(tickets_engine)
        with session_scope(tickets_factory) as session:
            tickets_count = session.scalar(select(func.count()).select_from(Ticket))
            threaded = session.scalar(
                select(func.count()).select_from(EmailIntake).where(EmailIntake.rule == "known_reference")
            )
        print(f"tickets created: {tickets_count} (expected {args.originals})")
        print(f"replies threaded: {threaded} of {args.replies}")

        for index, raw in enumerate(batch):
            (maildir / f"again-{index:06d}.eml").write_bytes(raw)
        started = time.perf_counter()
        while any(maildir.iterdir()):
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        with session_scope(tickets_factory) as session:
            again = session.scalar(select(func.count()).select_from(Ticket))
            intakes = session.scalar(select(func.count()).select_from(EmailIntake))
        print(
            f"redelivery     : {total} mails in {seconds:.2f} s; tickets {again} (new: {again - tickets_count}), "
            f"messages taken in {intakes} (duplicates: {intakes - total})"
        )
        ok = tickets_count == args.originals and threaded == args.replies and again == tickets_count
        print("OK" if ok else "MISMATCH")
        return 0 if ok else 1
    finally:
        sut.stop()
        ingest_engine.dispose()
        tickets_engine.dispose()
        smtp.controller.stop()
        for db in names.values():
            infra.drop_database(server, db)
        infra.delete_vhost(vhost)


if __name__ == "__main__":
    sys.exit(main())
