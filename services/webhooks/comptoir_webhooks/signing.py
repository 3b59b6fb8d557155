"""Signatures of webhook deliveries: HMAC-SHA256 over ``<timestamp>.<body>`` (docs/webhooks.md shows a receiver)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_SCHEME = "v1"
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SIGNATURE_SCHEME}={mac.hexdigest()}"


def signature_header(secrets_in_use: list[str], timestamp: int, body: bytes) -> str:
    """``v1=<hex>``, or several comma-separated while a rotated secret still signs: any one may match."""
    return ",".join(signature(secret, timestamp, body) for secret in secrets_in_use)


def verify(secret: str, header: str, timestamp: int, body: bytes) -> bool:
    """True if one signature of ``header`` is ``body``'s with ``secret`` (constant-time comparison)."""
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, part.strip()) for part in header.split(","))
