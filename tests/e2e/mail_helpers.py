"""Helpers for the mail end-to-end tests: reading a service's store, waiting for mail-ingest to know a sender."""

from __future__ import annotations

import time
from pathlib import Path

from comptoir_common.db import make_engine, make_session_factory, session_scope
from sqlalchemy import select


def store_query(system, fn, service: str = "tickets"):
    """``fn(session)`` over a service's database (read-only checks of what the processes did)."""
    engine = make_engine(system.database_urls[service], pool_size=1)
    try:
        with session_scope(make_session_factory(engine)) as session:
            return fn(session)
    finally:
        engine.dispose()


def wait_known_sender(system, email: str, timeout: float = 90.0) -> None:
    """Until mail-ingest's sender directory has the account (it learns it from ``auth.events``)."""
    from comptoir_mail_ingest.models import KnownUser

    deadline = time.monotonic() + timeout
    while not store_query(
        system, lambda s: s.scalar(select(KnownUser.id).where(KnownUser.email == email)), "mail_ingest"
    ):
        assert time.monotonic() < deadline, "mail-ingest never learnt the account"
        time.sleep(0.2)


def deliver(maildir: Path, name: str, raw: bytes) -> None:
    """Maildir delivery: written in tmp/, then renamed into new/ (never a half-written file in new/)."""
    (maildir / "tmp").mkdir(parents=True, exist_ok=True)
    (maildir / "new").mkdir(parents=True, exist_ok=True)
    path = maildir / "tmp" / name
    path.write_bytes(raw)
    path.rename(maildir / "new" / name)
