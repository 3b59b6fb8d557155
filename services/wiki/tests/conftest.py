"""Domain tests of the wiki run on this run's migrated PostgreSQL database, each inside a rolled-back transaction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from comptoir_testing.fixtures import service_session_fixtures
from comptoir_wiki import customers

CUSTOMER_A = "00000000-0000-4000-8000-0000000000aa"
CUSTOMER_B = "00000000-0000-4000-8000-0000000000bb"

engine, session = service_session_fixtures("wiki")


def make_actor(role: str, customer_id: str | None = None, name: str | None = None) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "role": role,
        "customer_id": customer_id,
        "name": name or role.title(),
        "email": f"{role}@example.test",
    }


@pytest.fixture
def actors(session) -> dict[str, dict]:
    """One person per role; the sales rep owns customer A (through the crm_sync read model), not B."""
    people = {
        "admin": make_actor("admin"),
        "agent": make_actor("agent", name="Thomas Technicien"),
        "sales": make_actor("sales", name="Sophie Commerciale"),
        "other_sales": make_actor("sales"),
        "client_a": make_actor("client", CUSTOMER_A, name="Claire Cliente"),
        "reseller_a": make_actor("reseller", CUSTOMER_A),
        "client_b": make_actor("client", CUSTOMER_B),
    }
    now = datetime.now(UTC)
    customers.apply_customer_upserted(
        session, {"id": CUSTOMER_A, "name": "Boulangerie Martin", "sales_rep_id": people["sales"]["id"]}, now
    )
    customers.apply_customer_upserted(
        session, {"id": CUSTOMER_B, "name": "Garage Dupont", "sales_rep_id": people["other_sales"]["id"]}, now
    )
    session.flush()
    return people
