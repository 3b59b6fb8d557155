"""Who is calling: signed tokens (bearer for the API, an HttpOnly cookie for the web) and CSRF protection.

A token carries the identity the services need to apply their rules (id, role, customer, name, email) and the id
of its server-side session (``sid``), so that a request costs no call to the auth service while a revoked session
or a deactivated user is refused at once (:mod:`comptoir_gateway.revocations`).
"""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Request
from fastapi.responses import Response

SESSION_COOKIE = "comptoir_session"
CSRF_COOKIE = "comptoir_csrf"
DEVICE_COOKIE = "comptoir_device"
CHALLENGE_COOKIE = "comptoir_login_code"
CSRF_FIELD = "csrf_token"
_ALGORITHM = "HS256"
_AUDIENCE = "comptoir"
SESSION_ENDED = "Votre session a pris fin. Connectez-vous à nouveau."


def issue_token(
    user: dict[str, Any],
    key: str,
    lifetime: timedelta,
    kind: str,
    session_id: str,
    session_expires_at: str | None = None,
) -> tuple[str, int]:
    """A signed token for ``user`` in session ``session_id``; returns it and its lifetime in seconds."""
    now = datetime.now(UTC)
    expires = now + lifetime
    if session_expires_at:
        expires = min(expires, datetime.fromisoformat(session_expires_at))
    claims = {
        "sub": user["id"],
        "role": user["role"],
        "cid": user.get("customer_id"),
        "name": user.get("name"),
        "email": user.get("email"),
        "kind": kind,
        "sid": session_id,
        "jti": secrets.token_urlsafe(9),  # two tokens issued in the same second still differ
        "iat": now,
        "exp": expires,
        "aud": _AUDIENCE,
    }
    return jwt.encode(claims, key, algorithm=_ALGORITHM), max(0, int((expires - now).total_seconds()))


def read_token(token: str, key: str, audience: str = _AUDIENCE) -> dict[str, Any] | None:
    try:
        return jwt.decode(token, key, algorithms=[_ALGORITHM], audience=audience)
    except jwt.PyJWTError:
        return None


def sign_value(payload: dict[str, Any], key: str, lifetime: timedelta, audience: str) -> str:
    """A small signed cookie value (trusted device, pending second-factor sign-in)."""
    now = datetime.now(UTC)
    return jwt.encode(
        {**payload, "iat": now, "exp": now + lifetime, "aud": audience}, key, algorithm=_ALGORITHM
    )


def actor_from_claims(claims: dict[str, Any]) -> dict[str, Any]:
    """The identity passed to every service call."""
    return {
        "id": claims["sub"],
        "role": claims["role"],
        "customer_id": claims.get("cid"),
        "name": claims.get("name"),
        "email": claims.get("email"),
    }


def token_from_request(request: Request) -> str | None:
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return request.cookies.get(SESSION_COOKIE) or None


def claims_from_request(request: Request) -> dict[str, Any] | None:
    """The claims of a valid, unrevoked token, None without one; 503 while revocations are still loading."""
    token = token_from_request(request)
    if not token:
        return None
    claims = read_token(token, request.app.state.settings.signing_key)
    if claims is None:
        return None
    revocations = getattr(request.app.state, "revocations", None)
    if revocations is None or not revocations.ready:
        raise HTTPException(
            503, "Le service démarre. Réessayez dans un instant.", headers={"Retry-After": "1"}
        )
    if revocations.refusal(claims):
        return None
    return claims


def optional_actor(request: Request) -> dict[str, Any] | None:
    claims = claims_from_request(request)
    if claims is None:
        return None
    request.state.session_id = claims.get("sid")
    return actor_from_claims(claims)


async def current_actor(request: Request) -> dict[str, Any]:
    # async on purpose: FastAPI runs plain-def dependencies in a thread pool, which costs more than the check.
    actor = optional_actor(request)
    if actor is None:
        raise HTTPException(401, "Authentification requise.", headers={"WWW-Authenticate": "Bearer"})
    return actor


CurrentActor = Annotated[dict[str, Any], Depends(current_actor)]


def client_info(request: Request) -> dict[str, str | None]:
    """Address and browser of the caller, for the audit log and the brute-force limits."""
    settings = request.app.state.settings
    ip = request.client.host if request.client else None
    if settings.trust_forwarded_for:
        forwarded = request.headers.get("x-forwarded-for", "")
        if forwarded:
            ip = forwarded.split(",")[0].strip()
    return {"ip": ip, "user_agent": (request.headers.get("user-agent") or "")[:300]}


ClientInfo = Annotated[dict[str, Any], Depends(client_info)]


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_valid(request: Request, submitted: str | None) -> bool:
    """Double-submit check: the form's token must equal the one in the CSRF cookie."""
    cookie = request.cookies.get(CSRF_COOKIE)
    # Bytes: compare_digest refuses non-ASCII str, and a forged token must be refused (400), not crash (500).
    return bool(cookie and submitted and hmac.compare_digest(cookie.encode(), submitted.encode()))


def cookie_secure(request: Request) -> bool:
    """Secure cookies when asked, or when served over TLS (directly or as the public address says)."""
    settings = request.app.state.settings
    return bool(
        settings.secure_cookies or request.url.scheme == "https" or settings.public_url.startswith("https://")
    )


def set_session_cookie(response: Response, request: Request, token: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=cookie_secure(request),
        path="/",
    )


DEVICE_LIFETIME = timedelta(days=30)


def set_device_cookie(response: Response, request: Request, user_id: str, device_token: str) -> None:
    """Remember a trusted browser for 30 days (the token inside is checked, and revocable, in auth)."""
    settings = request.app.state.settings
    value = sign_value(
        {"sub": user_id, "tok": device_token}, settings.signing_key, DEVICE_LIFETIME, "comptoir-device"
    )
    response.set_cookie(
        DEVICE_COOKIE,
        value,
        max_age=int(DEVICE_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=cookie_secure(request),
        path="/",
    )


def device_token(request: Request) -> str | None:
    value = request.cookies.get(DEVICE_COOKIE)
    if not value:
        return None
    claims = read_token(value, request.app.state.settings.signing_key, audience="comptoir-device")
    return claims.get("tok") if claims else None
