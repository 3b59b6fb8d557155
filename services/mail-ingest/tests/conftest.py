"""Mail-ingest tests run the pipeline against real PostgreSQL stores of mail_ingest and tickets."""

from __future__ import annotations

import uuid

import pytest
from comptoir_common import mailthread
from comptoir_common.blobs import DirectoryBlobStore
from comptoir_common.db import session_scope
from comptoir_testing.fixtures import service_session_factory_fixture

SECRET = "test-secret-for-mail-threading"
DOMAIN = "comptoir.local"

ingest_factory = service_session_factory_fixture("mail_ingest", name="ingest_factory")
tickets_factory = service_session_factory_fixture("tickets", name="tickets_factory")


class Harness:
    """A pipeline over a Maildir of its own, wired to the tickets domain in-process (same code as the RPC)."""

    def __init__(self, ingest_factory, tickets_factory, tmp_path, closed_policy="reopen", **config):
        from comptoir_mail_ingest.pipeline import IngestConfig, Pipeline
        from comptoir_mail_ingest.sources import MaildirSource

        self.mailbox = {"name": f"box-{uuid.uuid4().hex[:8]}", "address": "support@comptoir.local"}
        self.maildir = MaildirSource(tmp_path / "maildir")
        self.blobs = DirectoryBlobStore(tmp_path / "blobs")
        self.tickets_factory = tickets_factory
        self.session = ingest_factory()
        self.key = mailthread.thread_key(SECRET)
        self.ingest_calls = 0
        self.config = IngestConfig(
            mail_domain=DOMAIN,
            thread_key=self.key,
            closed_ticket_policy=closed_policy,
            support_local_parts=frozenset({"support"}),
            **config,
        )
        self.pipeline = Pipeline(self.session, self.session.commit, self.blobs, self.config, self.ingest)

    def ingest(self, mails):
        from comptoir_tickets import email_intake

        self.ingest_calls += 1
        with session_scope(self.tickets_factory) as session:
            return email_intake.ingest_emails(session, mails=mails)

    def drop(self, raw: bytes, name: str | None = None) -> str:
        name = name or f"{uuid.uuid4().hex}.eml"
        (self.maildir.path / "new" / name).write_bytes(raw)
        return name

    def run(self):
        return self.pipeline.run(self.mailbox, self.maildir)

    def rows(self):
        from comptoir_mail_ingest.models import RawMail
        from sqlalchemy import select

        self.session.expire_all()
        return self.session.scalars(
            select(RawMail).where(RawMail.mailbox == self.mailbox["name"]).order_by(RawMail.id)
        ).all()

    def token_message_id(self, ticket_id: str) -> str:
        return mailthread.message_id(self.key, ticket_id, uuid.uuid4().hex[:12], DOMAIN)

    def close(self):
        self.session.close()


@pytest.fixture
def harness(ingest_factory, tickets_factory, tmp_path):
    made = []

    def make(**kwargs) -> Harness:
        h = Harness(ingest_factory, tickets_factory, tmp_path / f"h{len(made)}", **kwargs)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()
