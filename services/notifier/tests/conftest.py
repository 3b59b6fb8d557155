"""Fixtures of the notifier service's tests: a real, migrated PostgreSQL database, rolled back per test."""

from comptoir_testing.fixtures import service_session_fixtures

engine, session = service_session_fixtures("notifier")
