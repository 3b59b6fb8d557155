"""Fixtures of the auth service's tests: a real, migrated PostgreSQL database, rolled back per test."""

import pytest
from comptoir_testing.fixtures import service_session_fixtures

engine, session = service_session_fixtures("auth")


@pytest.fixture
def db(session):
    return session


@pytest.fixture
def admin(session):
    from comptoir_auth import users

    user = users.create_user(session, email="chef@a6telecom.example", name="Chef Superviseur", role="admin")
    return {"id": user.id, "role": "admin", "name": user.name, "email": user.email, "customer_id": None}
