"""The reports service: statistics computed from the ticket events into its own store."""
