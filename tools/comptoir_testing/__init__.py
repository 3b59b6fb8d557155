"""Test support shared by every service's tests and the cross-service tests: real PostgreSQL, RabbitMQ and SMTP."""
