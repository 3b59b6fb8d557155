"""French email templates (Jinja2): each notification has ``<name>.subject.txt``, ``<name>.txt`` and ``<name>.html``.

Where a template's text comes from, first found wins, file by file:

1. the admins' adjusted copies, kept in the notifier's database (``template_overrides``, edited on the page
   *Modèles d'e-mails*; each process rereads them at most every ``OVERRIDES_TTL`` seconds);
2. ``NOTIFIER_TEMPLATES_DIR`` (files an operator put there);
3. the packaged templates.

An adjusted template is checked when saved (syntax, only the variables its packaged version uses); if it still fails
when a mail is rendered, the packaged wording is used and a warning logged: a wording mistake never loses a mail.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from comptoir_common.db import utcnow
from comptoir_common.errors import InvalidInput, NotFound
from jinja2 import (
    ChoiceLoader,
    DictLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    TemplateSyntaxError,
    meta,
    select_autoescape,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

PACKAGED_TEMPLATES = os.path.join(os.path.dirname(__file__), "templates")
PARTS = (".subject.txt", ".txt", ".html")
PART_LABELS = {".subject.txt": "Objet", ".txt": "Texte brut", ".html": "HTML"}
# Seconds a process keeps the adjusted templates before reading them again (other processes' saves show then).
OVERRIDES_TTL = 5.0
MAX_TEMPLATE_CHARS = 50_000

TEMPLATE_LABELS = {
    "ticket_created": "Accusé de réception d'une demande",
    "ticket_reply": "Réponse de l'équipe au client",
    "ticket_status_changed": "Changement de statut",
    "staff_assigned": "Équipe : ticket assigné",
    "staff_unidentified": "Équipe : nouveau ticket non identifié",
    "staff_sla_breached": "Équipe : délai de résolution dépassé",
    "account_invitation": "Compte : invitation",
    "account_password_reset": "Compte : réinitialisation du mot de passe",
    "account_login_code": "Compte : code de connexion",
    "account_signup_received": "Compte : demande d'inscription reçue",
    "account_signup_rejected": "Compte : demande d'inscription refusée",
}


def _loader_chain(override_dir: str, overrides: tuple[tuple[str, str], ...]) -> list:
    loaders: list = [DictLoader(dict(overrides))] if overrides else []
    if override_dir:
        loaders.append(FileSystemLoader(override_dir))
    loaders.append(PackageLoader("comptoir_notifier", "templates"))
    return loaders


@lru_cache(maxsize=8)
def environment(override_dir: str = "", overrides: tuple[tuple[str, str], ...] = ()) -> Environment:
    """Compiled templates for one set of adjusted copies (cached: a new save gives a new environment)."""
    return Environment(
        loader=ChoiceLoader(_loader_chain(override_dir, overrides)),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=True,
    )


def template_names() -> list[str]:
    """The mails admins can adjust: every packaged name that has its three parts (not the base layouts)."""
    files = set(os.listdir(PACKAGED_TEMPLATES))
    names = {name.split(".")[0] for name in files}
    return sorted(name for name in names if all(f"{name}{part}" in files for part in PARTS))


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


def _render_with(env: Environment, name: str, context: dict[str, Any]) -> RenderedMail:
    subject = env.get_template(f"{name}.subject.txt").render(context)
    return RenderedMail(
        subject=" ".join(subject.split()),
        text=env.get_template(f"{name}.txt").render(context),
        html=env.get_template(f"{name}.html").render(context),
    )


def render(
    name: str,
    context: dict[str, Any],
    override_dir: str = "",
    overrides: tuple[tuple[str, str], ...] = (),
) -> RenderedMail:
    try:
        return _render_with(environment(override_dir, overrides), name, context)
    except Exception:
        if not any(filename.startswith(f"{name}.") for filename, _ in overrides):
            raise
        log.warning("adjusted template %s failed to render; packaged wording used", name, exc_info=True)
        return _render_with(environment(override_dir), name, context)


# --- admins' adjusted copies ----------------------------------------------------------------------------------

_cached: dict[str, Any] = {"at": float("-inf"), "value": ()}


def overrides(session: Session) -> tuple[tuple[str, str], ...]:
    """The adjusted templates as (file name, source), read again at most every ``OVERRIDES_TTL`` seconds."""
    from comptoir_notifier.models import TemplateOverride

    now = time.monotonic()
    if now - _cached["at"] > OVERRIDES_TTL:
        rows = session.execute(
            select(TemplateOverride.filename, TemplateOverride.source).order_by(TemplateOverride.filename)
        ).all()
        _cached["value"] = tuple((row.filename, row.source) for row in rows)
        _cached["at"] = now
    return _cached["value"]


def _forget_overrides() -> None:
    _cached["at"] = float("-inf")


def _packaged_source(filename: str) -> str:
    env = environment()
    return env.loader.get_source(env, filename)[0]


def _variables(env: Environment, source: str) -> set[str]:
    return set(meta.find_undeclared_variables(env.parse(source)))


def allowed_variables(name: str) -> list[str]:
    """The variables the packaged version of ``name`` uses (with its layouts): what an adjusted copy may use."""
    env = environment()
    found: set[str] = set()
    pending = [f"{name}{part}" for part in PARTS]
    seen: set[str] = set()
    while pending:
        filename = pending.pop()
        if filename in seen:
            continue
        seen.add(filename)
        ast = env.parse(_packaged_source(filename))
        found |= set(meta.find_undeclared_variables(ast))
        pending.extend(ref for ref in meta.find_referenced_templates(ast) if ref)
    return sorted(found)


def _require(name: str) -> None:
    if name not in template_names():
        raise NotFound("Modèle introuvable.")


def describe(session: Session, name: str, override_dir: str = "") -> dict[str, Any]:
    """The current text of each part, the packaged text, which parts are adjusted, and the usable variables."""
    from comptoir_notifier.models import TemplateOverride

    _require(name)
    rows = {
        row.filename: row
        for row in session.scalars(
            select(TemplateOverride).where(TemplateOverride.filename.in_([f"{name}{p}" for p in PARTS]))
        )
    }
    file_env = environment(override_dir)
    result: dict[str, Any] = {
        "name": name,
        "label": TEMPLATE_LABELS.get(name, name),
        "defaults": {},
        "adjusted": {},
        "variables": allowed_variables(name),
    }
    for part in PARTS:
        filename = f"{name}{part}"
        row = rows.get(filename)
        result[part] = row.source if row else file_env.loader.get_source(file_env, filename)[0]
        result["defaults"][part] = _packaged_source(filename)
        result["adjusted"][part] = (
            {"by": row.updated_by_name, "at": row.updated_at.isoformat()} if row is not None else None
        )
    return result


def list_templates(session: Session) -> list[dict[str, Any]]:
    from comptoir_notifier.models import TemplateOverride

    adjusted: dict[str, Any] = {}
    for row in session.scalars(select(TemplateOverride)):
        name = row.filename.split(".")[0]
        if name not in adjusted or row.updated_at > adjusted[name]["at"]:
            adjusted[name] = {"at": row.updated_at, "by": row.updated_by_name}
    return [
        {
            "name": name,
            "label": TEMPLATE_LABELS.get(name, name),
            "adjusted_at": adjusted[name]["at"].isoformat() if name in adjusted else None,
            "adjusted_by": adjusted[name]["by"] if name in adjusted else None,
        }
        for name in template_names()
    ]


def check(name: str, part: str, source: str) -> None:
    """Refuse (InvalidInput, in French) a template that would not render: bad syntax or an unknown variable."""
    label = PART_LABELS[part]
    if len(source) > MAX_TEMPLATE_CHARS:
        raise InvalidInput(f"{label} : texte trop long ({MAX_TEMPLATE_CHARS} caractères au plus).")
    if part == ".subject.txt" and not source.strip():
        raise InvalidInput("Objet : ne peut pas être vide.")
    env = environment()
    try:
        used = _variables(env, source)
    except TemplateSyntaxError as exc:
        raise InvalidInput(f"{label}, ligne {exc.lineno} : erreur de syntaxe ({exc.message}).") from None
    unknown = sorted(used - set(allowed_variables(name)) - set(env.globals))
    if unknown:
        raise InvalidInput(
            f"{label} : variable inconnue {', '.join(unknown)}. "
            f"Variables disponibles : {', '.join(allowed_variables(name))}."
        )


def save(session: Session, name: str, parts: dict[str, str], by: str | None) -> None:
    """Store the adjusted parts (a part equal to the packaged text is not an adjustment and is removed)."""
    from comptoir_notifier.models import TemplateOverride

    _require(name)
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise InvalidInput(f"Partie de modèle inconnue : {', '.join(sorted(unknown))}.")
    cleaned = {part: str(source).replace("\r\n", "\n") for part, source in parts.items()}
    for part, source in cleaned.items():
        check(name, part, source)
    for part, source in cleaned.items():
        filename = f"{name}{part}"
        row = session.get(TemplateOverride, filename)
        if source.strip() == _packaged_source(filename).strip():
            if row is not None:
                session.delete(row)
            continue
        if row is None:
            row = TemplateOverride(filename=filename)
            session.add(row)
        row.source = source
        row.updated_by_name = by
        row.updated_at = utcnow()
    session.flush()
    _forget_overrides()


def reset(session: Session, name: str) -> None:
    """Back to the packaged wording for every part of ``name``."""
    from comptoir_notifier.models import TemplateOverride

    _require(name)
    for part in PARTS:
        row = session.get(TemplateOverride, f"{name}{part}")
        if row is not None:
            session.delete(row)
    session.flush()
    _forget_overrides()
