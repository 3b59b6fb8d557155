"""The gateway: the French web interface and the REST API, in front of the services."""
