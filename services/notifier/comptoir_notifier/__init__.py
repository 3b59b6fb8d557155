"""The notifier service: every email Comptoir sends, queued in its own store and sent with retries."""
