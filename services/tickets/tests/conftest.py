"""Domain tests of the tickets service over a real PostgreSQL database, each test in a rolled-back transaction.

The read models (customers, users) are filled by publishing contract-shaped events to the real handlers' functions,
as crm_sync and auth would.
"""

from __future__ import annotations

import uuid

import pytest
from comptoir_common.blobs import DirectoryBlobStore
from comptoir_common.events import Event, system_actor
from comptoir_testing.fixtures import service_session_fixtures
from comptoir_tickets import readmodels
from sqlalchemy.orm import Session

engine, session = service_session_fixtures("tickets")


@pytest.fixture
def blobs(tmp_path) -> DirectoryBlobStore:
    return DirectoryBlobStore(tmp_path / "blobs")


class World:
    """Customers and people of one test, created through the read models' event functions."""

    def __init__(self, session: Session):
        self.session = session

    def customer(
        self, name: str, sales_rep_id: str | None = None, parent_customer_id: str | None = None
    ) -> str:
        customer_id = str(uuid.uuid4())
        readmodels.upsert_customer(
            self.session,
            Event(
                type="customer.upserted",
                actor=system_actor("crm_sync"),
                data={
                    "id": customer_id,
                    "name": name,
                    "source": "filemaker",
                    "external_key": name,
                    "account_number": None,
                    "addresses": [],
                    "phone": None,
                    "email_domains": [],
                    "sales_rep_id": sales_rep_id,
                    "parent_customer_id": parent_customer_id,
                    "active": True,
                    "extra": {},
                },
            ),
        )
        self.session.flush()
        return customer_id

    def person(self, role: str, name: str | None = None, customer_id: str | None = None) -> dict:
        user_id = str(uuid.uuid4())
        name = name or f"{role.title()} {user_id[:4]}"
        data = {
            "id": user_id,
            "email": f"{role}.{user_id[:8]}@example.test",
            "name": name,
            "phone": None,
            "role": role,
            "customer_id": customer_id,
            "language": "fr",
            "active": True,
        }
        readmodels.upsert_user(
            self.session, Event(type="user.created", actor=system_actor("auth"), data=data)
        )
        self.session.flush()
        return {"id": user_id, "role": role, "customer_id": customer_id, "name": name, "email": data["email"]}


@pytest.fixture
def world(session) -> World:
    return World(session)
