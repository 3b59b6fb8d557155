"""Fixtures over real PostgreSQL, RabbitMQ and SMTP for every test in the repository (see comptoir_testing)."""

pytest_plugins = ["comptoir_testing.fixtures", "comptoir_testing.system", "comptoir_testing.browser"]
