"""Mail pages (French): the quarantine of incoming mail and the notification templates (admins), and moving a mail's
message to another ticket from the ticket page (admins and agents).

The services check the roles on every call: mail_ingest and notifier refuse anyone but an admin, tickets checks
the role and that both tickets are visible to the caller.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from comptoir_gateway.rpc import ServicesDep
from comptoir_gateway.web.rendering import render_page
from comptoir_gateway.web.routes import ErrorPage, require_actor, submit_form

router = APIRouter(include_in_schema=False)

SET_ASIDE_VIEWS = {"quarantined": "En quarantaine", "ignored": "Ignorés"}
NOTICES = {
    "replayed": "L'e-mail est remis dans la file : il sera traité au prochain relevé de la boîte.",
    "discarded": "L'e-mail est supprimé de la liste (il reste reconnu s'il est distribué à nouveau).",
    "saved": "Le modèle est enregistré ; les prochains e-mails l'utilisent.",
    "reset": "Le modèle d'origine est rétabli.",
}
TEMPLATE_PARTS = [
    (".subject.txt", "subject", "Objet"),
    (".txt", "text", "Texte brut"),
    (".html", "html", "HTML"),
]


# --- quarantine -----------------------------------------------------------------------------------------------


@router.get("/admin/courriels")
async def set_aside_page(
    request: Request, services: ServicesDep, statut: str = "quarantined", notice: str = ""
) -> Response:
    actor = require_actor(request)
    status = statut if statut in SET_ASIDE_VIEWS else "quarantined"
    mails = await services.call("mail_ingest", "list_set_aside", actor=actor, status=status, limit=200)
    mailboxes = await services.call("mail_ingest", "mailbox_status", actor=actor)
    return render_page(
        request,
        "admin/mail_set_aside.html",
        {
            "mails": mails,
            "mailboxes": mailboxes,
            "status": status,
            "views": SET_ASIDE_VIEWS,
            "notice": NOTICES.get(notice),
        },
    )


async def _set_aside_mail(
    request: Request, services, actor: dict, raw_mail_id: int, **extra: Any
) -> Response:
    mail = await services.call("mail_ingest", "get_set_aside", actor=actor, raw_mail_id=raw_mail_id)
    status_code = extra.pop("status_code", 200)
    return render_page(request, "admin/mail_raw.html", {"mail": mail, **extra}, status_code=status_code)


@router.get("/admin/courriels/{raw_mail_id}")
async def set_aside_mail_page(raw_mail_id: int, request: Request, services: ServicesDep) -> Response:
    return await _set_aside_mail(request, services, require_actor(request), raw_mail_id)


def _set_aside_refusal(request: Request, services, actor: dict, raw_mail_id: int) -> ErrorPage:
    """The set-aside mail's page again with the refusal of a form posted from it."""
    return lambda message, status: _set_aside_mail(
        request, services, actor, raw_mail_id, error=message, status_code=status
    )


@router.post("/admin/courriels/{raw_mail_id}/rejouer")
async def replay_mail(
    raw_mail_id: int, request: Request, services: ServicesDep, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    actor = require_actor(request)
    return await submit_form(
        request,
        csrf_token,
        lambda: services.call("mail_ingest", "replay", actor=actor, raw_mail_id=raw_mail_id),
        on_error=_set_aside_refusal(request, services, actor, raw_mail_id),
        on_success=lambda _: RedirectResponse("/admin/courriels?notice=replayed", status_code=303),
        propagate=(403, 404),
    )


@router.post("/admin/courriels/{raw_mail_id}/supprimer")
async def discard_mail(
    raw_mail_id: int,
    request: Request,
    services: ServicesDep,
    confirm: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    actor = require_actor(request)

    async def discard() -> None:
        if confirm != "1":
            raise HTTPException(422, "Cochez la case de confirmation pour supprimer cet e-mail.")
        await services.call("mail_ingest", "discard", actor=actor, raw_mail_id=raw_mail_id)

    return await submit_form(
        request,
        csrf_token,
        discard,
        on_error=_set_aside_refusal(request, services, actor, raw_mail_id),
        on_success=lambda _: RedirectResponse("/admin/courriels?notice=discarded", status_code=303),
        propagate=(403, 404),
    )


# --- notification templates -----------------------------------------------------------------------------------


@router.get("/admin/modeles-courriels")
async def templates_page(request: Request, services: ServicesDep, notice: str = "") -> Response:
    actor = require_actor(request)
    items = await services.call("notifier", "list_templates", actor=actor)
    return render_page(request, "admin/mail_templates.html", {"items": items, "notice": NOTICES.get(notice)})


async def _template_page(request: Request, services, actor: dict, name: str, **extra: Any) -> Response:
    template = await services.call("notifier", "get_template", actor=actor, name=name)
    status_code = extra.pop("status_code", 200)
    form = extra.pop("form", None) or {field: template[part] for part, field, _ in TEMPLATE_PARTS}
    return render_page(
        request,
        "admin/mail_template.html",
        {"template": template, "form": form, "parts": TEMPLATE_PARTS, **extra},
        status_code=status_code,
    )


@router.get("/admin/modeles-courriels/{name}")
async def template_page(name: str, request: Request, services: ServicesDep, notice: str = "") -> Response:
    return await _template_page(request, services, require_actor(request), name, notice=NOTICES.get(notice))


@router.post("/admin/modeles-courriels/{name}")
async def template_save(
    name: str,
    request: Request,
    services: ServicesDep,
    subject: Annotated[str, Form()] = "",
    text: Annotated[str, Form()] = "",
    html: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    actor = require_actor(request)
    form = {"subject": subject, "text": text, "html": html}
    return await submit_form(
        request,
        csrf_token,
        lambda: services.call(
            "notifier",
            "set_template",
            actor=actor,
            name=name,
            parts={part: form[field] for part, field, _ in TEMPLATE_PARTS},
        ),
        # What the admin typed is put back in the form: nothing is lost.
        on_error=lambda message, status: _template_page(
            request, services, actor, name, form=form, error=message, status_code=status
        ),
        on_success=lambda _: RedirectResponse(
            f"/admin/modeles-courriels/{name}?notice=saved", status_code=303
        ),
        propagate=(403, 404),
    )


@router.post("/admin/modeles-courriels/{name}/reinitialiser")
async def template_reset(
    name: str, request: Request, services: ServicesDep, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    actor = require_actor(request)
    return await submit_form(
        request,
        csrf_token,
        lambda: services.call("notifier", "reset_template", actor=actor, name=name),
        on_error=lambda message, status: _template_page(
            request, services, actor, name, error=message, status_code=status
        ),
        on_success=lambda _: RedirectResponse(
            f"/admin/modeles-courriels/{name}?notice=reset", status_code=303
        ),
        propagate=(403, 404),
    )
