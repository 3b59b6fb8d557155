"""The tickets service: tickets, their messages and history, and who may see them."""
