"""Account pages: sign-in (with the second factor), sign-out, forgotten password, invitation, sign-up, my profile."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from comptoir_gateway.rpc import ServicesDep
from comptoir_gateway.security import (
    CHALLENGE_COOKIE,
    SESSION_COOKIE,
    client_info,
    cookie_secure,
    device_token,
    issue_token,
    optional_actor,
    read_token,
    set_device_cookie,
    set_session_cookie,
    sign_value,
)
from comptoir_gateway.web.rendering import error_text, render_page
from comptoir_gateway.web.routes import PostedForm, error_page, require_actor, safe_next, submit_form

router = APIRouter(include_in_schema=False)

CHALLENGE_AUDIENCE = "comptoir-login-code"
CHALLENGE_LIFETIME = timedelta(minutes=10)


def _sign_in(request: Request, result: dict[str, Any], next_path: str) -> Response:
    """Set the session cookie of a finished sign-in and go where the person was heading."""
    settings = request.app.state.settings
    token, max_age = issue_token(
        result["user"],
        settings.signing_key,
        timedelta(hours=settings.web_session_hours),
        kind="web",
        session_id=result["session"]["id"],
        session_expires_at=result["session"]["expires_at"],
    )
    response = RedirectResponse(safe_next(next_path), status_code=303)
    set_session_cookie(response, request, token, max_age)
    response.delete_cookie(CHALLENGE_COOKIE, path="/")
    if result.get("device_token"):
        set_device_cookie(response, request, result["user"]["id"], result["device_token"])
    return response


@router.get("/login")
async def login_page(request: Request, next: str | None = None, notice: str | None = None) -> Response:
    if optional_actor(request):
        return RedirectResponse(safe_next(next), status_code=303)
    notices = {
        "reset": "Votre mot de passe a été modifié. Connectez-vous avec le nouveau.",
        "welcome": "Votre mot de passe est enregistré. Vous pouvez vous connecter.",
        "logout": "Vous êtes déconnecté.",
        "everywhere": "Toutes vos sessions ont été fermées.",
        "expired": "Votre demande de code a expiré. Reconnectez-vous.",
    }
    return render_page(request, "login.html", {"next": safe_next(next), "notice": notices.get(notice or "")})


@router.post("/login")
async def login_submit(
    request: Request,
    services: ServicesDep,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    context = {"email": email, "next": safe_next(next)}
    return await submit_form(
        request,
        csrf_token,
        lambda: services.call(
            "auth",
            "login",
            email=email,
            password=password,
            kind="web",
            client=client_info(request),
            device_token=device_token(request),
        ),
        on_error=lambda message, status: render_page(
            request, "login.html", context | {"error": message}, status_code=status
        ),
        on_success=lambda result: _after_password(request, result, next),
        refused="Connexion impossible.",
    )


def _after_password(request: Request, result: dict[str, Any], next: str) -> Response:
    """Ask for the emailed code when the account needs it, else sign in."""
    if result["status"] == "code_required":
        settings = request.app.state.settings
        response = RedirectResponse("/login/code", status_code=303)
        value = sign_value(
            {"cid": result["challenge_id"], "next": safe_next(next), "hint": result.get("email_hint")},
            settings.signing_key,
            CHALLENGE_LIFETIME,
            CHALLENGE_AUDIENCE,
        )
        response.set_cookie(
            CHALLENGE_COOKIE,
            value,
            max_age=int(CHALLENGE_LIFETIME.total_seconds()),
            httponly=True,
            samesite="strict",
            secure=cookie_secure(request),
            path="/",
        )
        return response
    return _sign_in(request, result, next)


def _challenge(request: Request) -> dict[str, Any] | None:
    value = request.cookies.get(CHALLENGE_COOKIE)
    if not value:
        return None
    return read_token(value, request.app.state.settings.signing_key, audience=CHALLENGE_AUDIENCE)


@router.get("/login/code")
async def code_page(request: Request) -> Response:
    challenge = _challenge(request)
    if challenge is None:
        return RedirectResponse("/login?notice=expired", status_code=303)
    return render_page(request, "login_code.html", {"hint": challenge.get("hint")})


@router.post("/login/code")
async def code_submit(
    request: Request,
    services: ServicesDep,
    code: Annotated[str, Form()] = "",
    trust_device: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    challenge = _challenge(request)
    if challenge is None:
        return RedirectResponse("/login?notice=expired", status_code=303)
    return await submit_form(
        request,
        csrf_token,
        lambda: services.call(
            "auth",
            "verify_code",
            challenge_id=challenge["cid"],
            code=code,
            trust_device=bool(trust_device),
            client=client_info(request),
        ),
        on_error=lambda message, status: _code_page(request, challenge, error=message, status_code=status),
        on_success=lambda result: _sign_in(request, result, challenge.get("next") or "/"),
    )


def _code_page(
    request: Request, challenge: dict[str, Any], status_code: int = 200, **messages: str
) -> Response:
    return render_page(
        request, "login_code.html", {"hint": challenge.get("hint")} | messages, status_code=status_code
    )


@router.post("/login/code/resend")
async def code_resend(
    request: Request, services: ServicesDep, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    challenge = _challenge(request)
    if challenge is None:
        return RedirectResponse("/login?notice=expired", status_code=303)
    return await submit_form(
        request,
        csrf_token,
        lambda: services.call(
            "auth", "resend_code", challenge_id=challenge["cid"], client=client_info(request)
        ),
        on_error=lambda message, status: _code_page(request, challenge, error=message, status_code=status),
        on_success=lambda _: _code_page(
            request, challenge, notice="Un nouveau code vient de vous être envoyé."
        ),
    )


def _signed_out(notice: str) -> Response:
    """To the sign-in page with ``notice``, the session cookie removed."""
    response = RedirectResponse(f"/login?notice={notice}", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(
    request: Request, services: ServicesDep, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    async def sign_out() -> None:
        # Without a valid session there is nothing to end at the auth service; the cookie still goes.
        actor = optional_actor(request)
        if actor is not None:
            await services.call(
                "auth",
                "logout",
                actor=actor,
                session_id=request.state.session_id,
                client=client_info(request),
            )

    return await submit_form(
        request,
        csrf_token,
        sign_out,
        # A forged sign-out (a cross-site form) ends nothing: the session cookie stays, and the sign-in page sends a
        # signed-in person back home.
        on_error=lambda message, status: RedirectResponse("/login?notice=logout", status_code=303),
        on_success=lambda _: _signed_out("logout"),
    )


@router.post("/logout/everywhere")
async def logout_everywhere(
    request: Request, services: ServicesDep, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    actor = require_actor(request)

    return await submit_form(
        request,
        csrf_token,
        lambda: services.call("auth", "logout_everywhere", actor=actor, client=client_info(request)),
        on_error=error_page,
        on_success=lambda _: _signed_out("everywhere"),
    )


# --- forgotten password, reset and invitation links ---------------------------------------------------------


@router.get("/mot-de-passe/oublie")
async def forgot_page(request: Request) -> Response:
    return render_page(request, "password_forgot.html", {})


@router.post("/mot-de-passe/oublie")
async def forgot_submit(
    request: Request,
    services: ServicesDep,
    email: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    return await submit_form(
        request,
        csrf_token,
        lambda: services.call("auth", "request_password_reset", email=email, client=client_info(request)),
        on_error=lambda message, status: render_page(
            request, "password_forgot.html", {"email": email, "error": message}, status_code=status
        ),
        on_success=lambda result: render_page(request, "password_forgot.html", {"sent": result["message"]}),
    )


async def _link_page(request: Request, services, token: str, purpose: str) -> Response:
    try:
        info = await services.call("auth", "get_link_info", token=token)
    except HTTPException as exc:
        if exc.status_code >= 500:
            raise
        return render_page(request, "password_set.html", {"invalid": error_text(exc)}, status_code=410)
    if info["purpose"] != purpose:
        return render_page(
            request, "password_set.html", {"invalid": "Ce lien n'est plus valable."}, status_code=410
        )
    return render_page(request, "password_set.html", {"info": info, "purpose": purpose})


class NewPasswordForm(PostedForm):
    """The password chosen from a reset or invitation link, typed twice."""

    password: str = ""
    confirm: str = ""


async def _link_submit(
    request: Request, services, token: str, purpose: str, form: NewPasswordForm
) -> Response:
    page = {"info": {"purpose": purpose}, "purpose": purpose}

    def show_error(message: str, status_code: int) -> Response:
        return render_page(request, "password_set.html", page | {"error": message}, status_code=status_code)

    method = "reset_password" if purpose == "reset" else "accept_invitation"
    notice = "reset" if purpose == "reset" else "welcome"

    async def set_password() -> None:
        if form.password != form.confirm:
            raise HTTPException(422, "Les deux mots de passe saisis sont différents.")
        await services.call("auth", method, token=token, password=form.password, client=client_info(request))

    return await submit_form(
        request,
        form.csrf_token,
        set_password,
        on_error=show_error,
        on_success=lambda _: RedirectResponse(f"/login?notice={notice}", status_code=303),
    )


@router.get("/mot-de-passe/reinitialiser/{token}")
async def reset_page(token: str, request: Request, services: ServicesDep) -> Response:
    return await _link_page(request, services, token, "reset")


@router.post("/mot-de-passe/reinitialiser/{token}")
async def reset_submit(
    token: str, request: Request, services: ServicesDep, form: Annotated[NewPasswordForm, Form()]
) -> Response:
    return await _link_submit(request, services, token, "reset", form)


@router.get("/invitation/{token}")
async def invitation_page(token: str, request: Request, services: ServicesDep) -> Response:
    return await _link_page(request, services, token, "invitation")


@router.post("/invitation/{token}")
async def invitation_submit(
    token: str, request: Request, services: ServicesDep, form: Annotated[NewPasswordForm, Form()]
) -> Response:
    return await _link_submit(request, services, token, "invitation", form)


# --- sign-up request ----------------------------------------------------------------------------------------


@router.get("/inscription")
async def signup_page(request: Request) -> Response:
    return render_page(request, "signup.html", {"form": {}})


@router.post("/inscription")
async def signup_submit(
    request: Request,
    services: ServicesDep,
    email: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    company: Annotated[str, Form()] = "",
    phone: Annotated[str, Form()] = "",
    message: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    form = {"email": email, "name": name, "company": company, "phone": phone, "message": message}
    return await submit_form(
        request,
        csrf_token,
        lambda: services.call("auth", "request_signup", fields=form, client=client_info(request)),
        on_error=lambda message, status: render_page(
            request, "signup.html", {"form": form, "error": message}, status_code=status
        ),
        on_success=lambda result: render_page(
            request, "signup.html", {"form": {}, "sent": result["message"]}
        ),
    )


# --- my profile ---------------------------------------------------------------------------------------------


async def _profile(request: Request, services, actor: dict, **extra: Any) -> Response:
    profile = await services.call("auth", "get_profile", actor=actor)
    status_code = extra.pop("status_code", 200)
    return render_page(
        request,
        "profile.html",
        {"profile": profile, "current_session": getattr(request.state, "session_id", None), **extra},
        status_code=status_code,
    )


@router.get("/profil")
async def profile_page(request: Request, services: ServicesDep) -> Response:
    return await _profile(request, services, require_actor(request))


async def _profile_action(request: Request, services, csrf_token: str, call, success: str) -> Response:
    actor = require_actor(request)
    return await submit_form(
        request,
        csrf_token,
        lambda: call(actor),
        on_error=lambda message, status: _profile(
            request, services, actor, error=message, status_code=status
        ),
        on_success=lambda _: _profile(request, services, actor, notice=success),
    )


@router.post("/profil")
async def profile_submit(
    request: Request,
    services: ServicesDep,
    name: Annotated[str, Form()] = "",
    phone: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    async def call(actor):
        await services.call(
            "auth",
            "update_profile",
            actor=actor,
            changes={"name": name, "phone": phone},
            client=client_info(request),
        )

    return await _profile_action(request, services, csrf_token, call, "Vos informations sont enregistrées.")


@router.post("/profil/mot-de-passe")
async def profile_password(
    request: Request,
    services: ServicesDep,
    current_password: Annotated[str, Form()] = "",
    new_password: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    async def call(actor):
        if new_password != confirm:
            raise HTTPException(422, "Les deux mots de passe saisis sont différents.")
        await services.call(
            "auth",
            "change_password",
            actor=actor,
            current_password=current_password,
            new_password=new_password,
            session_id=request.state.session_id,
            client=client_info(request),
        )

    return await _profile_action(
        request,
        services,
        csrf_token,
        call,
        "Votre mot de passe est modifié. Vos autres sessions ont été fermées.",
    )


@router.post("/profil/double-authentification")
async def profile_two_factor(
    request: Request,
    services: ServicesDep,
    enabled: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    on = enabled == "1"

    async def call(actor):
        await services.call("auth", "set_two_factor", actor=actor, enabled=on, client=client_info(request))

    message = (
        "La double authentification est activée." if on else "La double authentification est désactivée."
    )
    return await _profile_action(request, services, csrf_token, call, message)


@router.post("/profil/navigateurs/revoquer")
async def profile_revoke_devices(
    request: Request,
    services: ServicesDep,
    device_id: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    async def call(actor):
        await services.call(
            "auth",
            "revoke_trusted_devices",
            actor=actor,
            user_id=actor["id"],
            device_id=device_id or None,
            client=client_info(request),
        )

    return await _profile_action(request, services, csrf_token, call, "Ce navigateur n'est plus reconnu.")
