"""Shared building blocks of every Comptoir service: one way to do each thing."""
