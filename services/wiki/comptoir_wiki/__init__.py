"""The wiki service: knowledge pages grouped by customer, their revisions, attachments and who may read them."""
