#!/usr/bin/env bash
# The whole suite against real PostgreSQL and RabbitMQ (URLs from TEST_DATABASE_URL / TEST_AMQP_URI, defaulting to
# the local servers). Each run makes its own databases and vhost and drops them afterwards (tests/conftest.py).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m pytest "$@"
