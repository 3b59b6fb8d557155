"""Sign-in and the signed-in user."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request

from comptoir_gateway.api.schemas import LoginIn, MeOut, TokenOut
from comptoir_gateway.rpc import ServicesDep
from comptoir_gateway.security import CurrentActor, issue_token

router = APIRouter(tags=["auth"])


@router.post(
    "/auth/login", response_model=TokenOut, responses={401: {"description": "Identifiants incorrects"}}
)
async def login(body: LoginIn, request: Request, services: ServicesDep) -> TokenOut:
    """Exchange email and password for a bearer token."""
    user = await services.call("auth", "login", email=body.email, password=body.password)
    settings = request.app.state.settings
    lifetime = timedelta(minutes=settings.access_token_minutes)
    token = issue_token(user, settings.signing_key, lifetime, kind="api")
    return TokenOut(access_token=token, expires_in=int(lifetime.total_seconds()))


@router.get("/me", response_model=MeOut)
async def me(actor: CurrentActor) -> MeOut:
    """The signed-in user."""
    return MeOut(**{k: actor.get(k) for k in ("id", "email", "name", "role", "customer_id")})
