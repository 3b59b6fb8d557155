"""Fixtures of the webhooks service's tests: a real, migrated PostgreSQL database, rolled back per test, and a real
HTTP receiver."""

import pytest
from comptoir_testing.fixtures import service_session_factory_fixture, service_session_fixtures
from comptoir_testing.webhook_receiver import WebhookReceiver

engine, session = service_session_fixtures("webhooks")


@pytest.fixture
def receiver():
    server = WebhookReceiver().start()
    yield server
    server.stop()


# Sessions that really commit, for the binding reconciles (they commit, and read from sessions of their own).
webhooks_factory = service_session_factory_fixture("webhooks", name="webhooks_factory")
