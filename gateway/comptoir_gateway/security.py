"""Who is calling: signed tokens (bearer for the API, an HttpOnly cookie for the web) and CSRF protection.

A token carries the identity the services need to apply their rules (id, role, customer, name, email), so that a
request costs no extra call to the auth service.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Request

SESSION_COOKIE = "comptoir_session"
CSRF_COOKIE = "comptoir_csrf"
CSRF_FIELD = "csrf_token"
_ALGORITHM = "HS256"
_AUDIENCE = "comptoir"


def issue_token(user: dict[str, Any], key: str, lifetime: timedelta, kind: str) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": user["id"],
        "role": user["role"],
        "cid": user.get("customer_id"),
        "name": user.get("name"),
        "email": user.get("email"),
        "kind": kind,
        "sid": str(uuid.uuid4()),
        "iat": now,
        "exp": now + lifetime,
        "aud": _AUDIENCE,
    }
    return jwt.encode(claims, key, algorithm=_ALGORITHM)


def read_token(token: str, key: str) -> dict[str, Any] | None:
    try:
        return jwt.decode(token, key, algorithms=[_ALGORITHM], audience=_AUDIENCE)
    except jwt.PyJWTError:
        return None


def actor_from_claims(claims: dict[str, Any]) -> dict[str, Any]:
    """The identity passed to every service call."""
    return {
        "id": claims["sub"],
        "role": claims["role"],
        "customer_id": claims.get("cid"),
        "name": claims.get("name"),
        "email": claims.get("email"),
    }


def _claims_from_request(request: Request) -> dict[str, Any] | None:
    key = request.app.state.settings.signing_key
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return read_token(authorization[7:].strip(), key)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return read_token(cookie, key)
    return None


def optional_actor(request: Request) -> dict[str, Any] | None:
    claims = _claims_from_request(request)
    return actor_from_claims(claims) if claims else None


async def current_actor(request: Request) -> dict[str, Any]:
    # async on purpose: FastAPI runs plain-def dependencies in a thread pool, which costs more than the check.
    actor = optional_actor(request)
    if actor is None:
        raise HTTPException(401, "Authentification requise.", headers={"WWW-Authenticate": "Bearer"})
    return actor


CurrentActor = Annotated[dict[str, Any], Depends(current_actor)]


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_valid(request: Request, submitted: str | None) -> bool:
    """Double-submit check: the form's token must equal the one in the CSRF cookie."""
    cookie = request.cookies.get(CSRF_COOKIE)
    return bool(cookie and submitted and hmac.compare_digest(cookie, submitted))
