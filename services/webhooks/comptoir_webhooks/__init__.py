"""Outgoing webhooks: events from the bus, POSTed (signed, retried) to the URLs admins subscribe."""
