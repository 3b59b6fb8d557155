"""Sign-in (with the second factor), token renewal, sign-out, password reset, invitations and sign-up requests."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request

from comptoir_gateway.api.account_schemas import (
    ChallengeIn,
    CodeIn,
    EmailIn,
    LoginIn,
    LoginOut,
    MeOut,
    MessageOut,
    PasswordResetIn,
    SignupIn,
    TokenOut,
)
from comptoir_gateway.rpc import ServicesDep
from comptoir_gateway.security import ClientInfo, CurrentActor, issue_token

router = APIRouter(tags=["auth"])


def _token(request: Request, result: dict) -> TokenOut:
    settings = request.app.state.settings
    token, expires_in = issue_token(
        result["user"],
        settings.signing_key,
        timedelta(minutes=settings.access_token_minutes),
        kind="api",
        session_id=result["session"]["id"],
        session_expires_at=result["session"]["expires_at"],
    )
    return TokenOut(access_token=token, expires_in=expires_in)


@router.post(
    "/auth/login",
    response_model=LoginOut,
    response_model_exclude_none=True,
    responses={401: {"description": "Identifiants incorrects"}, 429: {"description": "Trop de tentatives"}},
)
async def login(body: LoginIn, request: Request, services: ServicesDep, client: ClientInfo) -> LoginOut:
    """Exchange email and password for a short-lived bearer token (renew it with ``/auth/refresh``).

    When the second factor applies, the answer is ``second_factor_required`` with a ``challenge_id``: send the
    6-digit code mailed to the person to ``/auth/login/code``.
    """
    result = await services.call(
        "auth", "login", email=body.email, password=body.password, kind="api", client=client
    )
    if result["status"] == "code_required":
        return LoginOut(
            second_factor_required=True,
            challenge_id=result["challenge_id"],
            email_hint=result.get("email_hint"),
        )
    token = _token(request, result)
    return LoginOut(access_token=token.access_token, expires_in=token.expires_in)


@router.post("/auth/login/code", response_model=TokenOut, responses={401: {"description": "Code incorrect"}})
async def login_code(body: CodeIn, request: Request, services: ServicesDep, client: ClientInfo) -> TokenOut:
    """Finish a second-factor sign-in with the mailed code (5 attempts, 10 minutes)."""
    result = await services.call(
        "auth", "verify_code", challenge_id=body.challenge_id, code=body.code, client=client
    )
    return _token(request, result)


@router.post(
    "/auth/login/code/resend", response_model=MessageOut, responses={429: {"description": "Trop tôt"}}
)
async def resend_code(body: ChallengeIn, services: ServicesDep, client: ClientInfo) -> MessageOut:
    """Mail a new code (at most one a minute, three in all)."""
    await services.call("auth", "resend_code", challenge_id=body.challenge_id, client=client)
    return MessageOut(message="Un nouveau code vient d'être envoyé.")


@router.post("/auth/refresh", response_model=TokenOut, responses={401: {"description": "Session terminée"}})
async def refresh(request: Request, actor: CurrentActor, services: ServicesDep) -> TokenOut:
    """A new short-lived token for the same session, while the session is open (role and name refreshed)."""
    result = await services.call("auth", "refresh_session", session_id=request.state.session_id)
    return _token(request, result)


@router.post("/auth/logout", status_code=204)
async def logout(request: Request, actor: CurrentActor, services: ServicesDep, client: ClientInfo) -> None:
    """End this token's session at once."""
    await services.call("auth", "logout", actor=actor, session_id=request.state.session_id, client=client)


@router.post("/auth/logout-everywhere", response_model=dict)
async def logout_everywhere(actor: CurrentActor, services: ServicesDep, client: ClientInfo) -> dict:
    """End every session of the caller (web and API)."""
    return await services.call("auth", "logout_everywhere", actor=actor, client=client)


@router.post("/auth/password/forgot", response_model=MessageOut)
async def forgot_password(body: EmailIn, services: ServicesDep, client: ClientInfo) -> MessageOut:
    """Mail a reset link if an account has this address; the answer is the same either way."""
    result = await services.call("auth", "request_password_reset", email=body.email, client=client)
    return MessageOut(message=result["message"])


@router.post("/auth/password/reset", response_model=MessageOut)
async def reset_password(body: PasswordResetIn, services: ServicesDep, client: ClientInfo) -> MessageOut:
    """Choose a new password with the token of a reset link (single use, one hour)."""
    await services.call("auth", "reset_password", token=body.token, password=body.password, client=client)
    return MessageOut(message="Votre mot de passe a été modifié.")


@router.post("/auth/invitation/accept", response_model=MessageOut)
async def accept_invitation(body: PasswordResetIn, services: ServicesDep, client: ClientInfo) -> MessageOut:
    """Choose one's first password with the token of an invitation link."""
    await services.call("auth", "accept_invitation", token=body.token, password=body.password, client=client)
    return MessageOut(message="Votre mot de passe est enregistré.")


@router.post("/auth/signup", response_model=MessageOut, status_code=202)
async def signup(body: SignupIn, services: ServicesDep, client: ClientInfo) -> MessageOut:
    """Ask for an account; an acknowledgement is mailed and an admin decides."""
    result = await services.call("auth", "request_signup", fields=body.model_dump(), client=client)
    return MessageOut(message=result["message"])


@router.get("/me", response_model=MeOut)
async def me(actor: CurrentActor) -> MeOut:
    """The signed-in user."""
    return MeOut(**{k: actor.get(k) for k in ("id", "email", "name", "role", "customer_id")})
