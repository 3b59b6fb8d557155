"""Admin configuration: statuses, types, priorities and their targets, business calendar, canned responses.

French defaults (the product brief's) are written by the migration; admins change them through these functions.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from comptoir_common.db import utcnow
from comptoir_common.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from comptoir_tickets import sla
from comptoir_tickets.models import (
    STATUS_CATEGORIES,
    CannedResponse,
    Priority,
    Setting,
    Status,
    Ticket,
    TicketType,
)

DEFAULT_STATUSES = [
    ("new", "Non traité", "new"),
    ("open", "En cours", "open"),
    ("pending", "En attente client", "pending"),
    ("closed", "Clôturé", "closed"),
]
DEFAULT_PRIORITIES = [
    # key, label, target in business minutes (a business day is 9 h 30), default
    ("urgent", "Urgente", 4 * 60, False),
    ("high", "Haute", 8 * 60, False),
    ("normal", "Normale", 2 * 570, True),
    ("low", "Basse", 5 * 570, False),
]
DEFAULT_TYPES = [
    ("incident", "Incident"),
    ("information", "Demande d'information"),
    ("change", "Demande de modification"),
    ("termination", "Demande de résiliation"),
    ("billing", "Facturation"),
]
DEFAULT_CANNED = [
    (
        "Prise en charge",
        "Bonjour {client},\n\nNous avons bien reçu votre demande n° {numero} et nous la prenons en charge.\n\n"
        "Cordialement,\n{agent}",
    ),
    (
        "Demande d'informations complémentaires",
        "Bonjour {client},\n\nAfin de traiter votre demande n° {numero}, pourriez-vous nous préciser …\n\n"
        "Cordialement,\n{agent}",
    ),
    (
        "Résolution",
        "Bonjour {client},\n\nVotre demande n° {numero} est résolue. N'hésitez pas à nous répondre si le "
        "problème persiste.\n\nCordialement,\n{agent}",
    ),
]
CALENDAR_KEY = "business_calendar"
ATTACHMENT_LIMIT_KEY = "attachment_limit"
DEFAULT_ATTACHMENT_LIMIT = 25 * 1024 * 1024
KEY_PATTERN = re.compile(r"^[a-z0-9_-]{1,50}$")


def require_admin(actor: dict[str, Any]) -> None:
    if actor.get("role") != "admin":
        raise PermissionDenied("Seul un superviseur peut modifier la configuration.")


def _slug(label: str) -> str:
    import unicodedata

    ascii_label = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_label.lower()).strip("-")[:40]
    return slug or "item"


def _unique_key(session: Session, model: type, label: str) -> str:
    base = _slug(label)
    key, n = base, 1
    while session.get(model, key) is not None:
        n += 1
        key = f"{base}-{n}"
    return key


def _label(value: Any, what: str) -> str:
    value = (value or "").strip() if isinstance(value, str) else ""
    if not value:
        raise InvalidInput(f"Le libellé {what} est obligatoire.")
    if len(value) > 100:
        raise InvalidInput(f"Le libellé {what} ne doit pas dépasser 100 caractères.")
    return value


# --- cached snapshot (hot paths) -----------------------------------------------------------------------------

# Every ticket read and write needs labels, defaults and the calendar; they change rarely, so each process keeps
# them for a few seconds instead of querying five tables per request. A change made through this process is seen
# at once; other instances see it within CACHE_SECONDS.
CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class StatusInfo:
    key: str
    label: str
    category: str


@dataclass(frozen=True)
class PriorityInfo:
    key: str
    label: str
    target_minutes: int


@dataclass(frozen=True)
class ConfigSnapshot:
    statuses: dict[str, StatusInfo]
    types: dict[str, str]
    priorities: dict[str, PriorityInfo]
    default_status: StatusInfo
    default_priority: PriorityInfo
    calendar: Any
    attachment_limit: int


_cache_lock = threading.Lock()
_cache: dict[str, Any] = {"at": 0.0, "value": None}


def invalidate_cache() -> None:
    with _cache_lock:
        _cache["value"] = None


def cached(session: Session) -> ConfigSnapshot:
    """The configuration as of at most CACHE_SECONDS ago."""
    now = time.monotonic()
    with _cache_lock:
        value = _cache["value"]
        if value is not None and now - _cache["at"] < CACHE_SECONDS:
            return value
    status_rows = statuses(session)
    priority_rows = priorities(session)
    new_status = next((s for s in status_rows if s.category == "new"), None)
    default = next((p for p in priority_rows if p.is_default), priority_rows[0] if priority_rows else None)
    if new_status is None or default is None:
        raise RuntimeError("statuses or priorities missing: run the tickets migrations")
    status_infos = {s.key: StatusInfo(s.key, s.label, s.category) for s in status_rows}
    priority_infos = {p.key: PriorityInfo(p.key, p.label, p.target_minutes) for p in priority_rows}
    value = ConfigSnapshot(
        statuses=status_infos,
        types={t.key: t.label for t in types(session)},
        priorities=priority_infos,
        default_status=status_infos[new_status.key],
        default_priority=priority_infos[default.key],
        calendar=sla.calendar_from_config(calendar_config(session)),
        attachment_limit=attachment_limit(session),
    )
    with _cache_lock:
        _cache["value"], _cache["at"] = value, now
    return value


# --- reading -------------------------------------------------------------------------------------------------


def statuses(session: Session) -> list[Status]:
    return list(session.scalars(select(Status).order_by(Status.position, Status.key)))


def types(session: Session) -> list[TicketType]:
    return list(session.scalars(select(TicketType).order_by(TicketType.position, TicketType.key)))


def priorities(session: Session) -> list[Priority]:
    return list(session.scalars(select(Priority).order_by(Priority.position, Priority.key)))


def canned_responses(session: Session) -> list[CannedResponse]:
    return list(
        session.scalars(select(CannedResponse).order_by(CannedResponse.position, CannedResponse.title))
    )


def get_setting(session: Session, key: str, default: Any) -> Any:
    row = session.get(Setting, key)
    return row.value if row is not None else default


def calendar_config(session: Session) -> dict:
    return get_setting(session, CALENDAR_KEY, sla.DEFAULT_CALENDAR)


def calendar(session: Session):
    """The business calendar deadlines are computed in."""
    return cached(session).calendar


def attachment_limit(session: Session) -> int:
    return int(get_setting(session, ATTACHMENT_LIMIT_KEY, {"bytes": DEFAULT_ATTACHMENT_LIMIT})["bytes"])


def default_status(session: Session) -> Status:
    """The first status of category ``new``."""
    status = session.scalar(
        select(Status).where(Status.category == "new").order_by(Status.position, Status.key).limit(1)
    )
    if status is None:
        raise RuntimeError("no status of category 'new': run the tickets migrations")
    return status


def default_priority(session: Session) -> Priority:
    priority = session.scalar(
        select(Priority).order_by(Priority.is_default.desc(), Priority.position).limit(1)
    )
    if priority is None:
        raise RuntimeError("no priority configured: run the tickets migrations")
    return priority


def status_to_dict(status: Status) -> dict:
    return {
        "key": status.key,
        "label": status.label,
        "category": status.category,
        "position": status.position,
    }


def type_to_dict(ticket_type: TicketType) -> dict:
    return {"key": ticket_type.key, "label": ticket_type.label, "position": ticket_type.position}


def priority_to_dict(priority: Priority) -> dict:
    return {
        "key": priority.key,
        "label": priority.label,
        "target_minutes": priority.target_minutes,
        "position": priority.position,
        "is_default": priority.is_default,
    }


def canned_to_dict(canned: CannedResponse) -> dict:
    return {"id": canned.id, "title": canned.title, "body": canned.body, "position": canned.position}


def configuration_to_dict(session: Session) -> dict:
    """Everything the forms and pages need, in one answer."""
    return {
        "statuses": [status_to_dict(s) for s in statuses(session)],
        "types": [type_to_dict(t) for t in types(session)],
        "priorities": [priority_to_dict(p) for p in priorities(session)],
        "canned_responses": [canned_to_dict(c) for c in canned_responses(session)],
        "calendar": calendar_config(session),
        "attachment_limit": attachment_limit(session),
    }


# --- statuses ------------------------------------------------------------------------------------------------


def _category(value: Any) -> str:
    if value not in STATUS_CATEGORIES:
        raise InvalidInput("La catégorie doit être : new, open, pending ou closed.")
    return value


def add_status(session: Session, *, actor: dict, label: str, category: str) -> Status:
    """A new status at the end of the list."""
    require_admin(actor)
    label = _label(label, "du statut")
    position = (session.scalar(select(func.max(Status.position))) or 0) + 1
    status = Status(key=_unique_key(session, Status, label), label=label, category=_category(category))
    status.position = position
    session.add(status)
    session.flush()
    return status


def update_status(
    session: Session, *, actor: dict, key: str, label: str | None = None, category: str | None = None
) -> Status:
    """Rename a status or move it to another category (tickets in it follow, SLA included)."""
    require_admin(actor)
    status = session.get(Status, key)
    if status is None:
        raise NotFound("Statut introuvable.")
    if label is not None:
        status.label = _label(label, "du statut")
    if category is not None and category != status.category:
        new_category = _category(category)
        if status.category == "new" and _count_in_category(session, "new") <= 1:
            raise Conflict("Il faut au moins un statut de catégorie « nouveau ».")
        from comptoir_tickets import tickets as ticket_ops

        old_category = status.category
        status.category = new_category
        session.flush()
        for ticket in session.scalars(select(Ticket).where(Ticket.status == key).with_for_update()):
            ticket_ops.apply_category_change(session, ticket, old_category, new_category, utcnow())
    return status


def _count_in_category(session: Session, category: str) -> int:
    return session.scalar(select(func.count()).select_from(Status).where(Status.category == category)) or 0


def reorder_statuses(session: Session, *, actor: dict, keys: list[str]) -> list[Status]:
    require_admin(actor)
    existing = {s.key: s for s in statuses(session)}
    if sorted(keys) != sorted(existing):
        raise InvalidInput("L'ordre doit citer chaque statut une fois.")
    for position, key in enumerate(keys, start=1):
        existing[key].position = position
    session.flush()
    return statuses(session)


def remove_status(session: Session, *, actor: dict, key: str, replacement: str | None = None) -> None:
    """Remove a status; tickets in it move to ``replacement`` (required when the status is in use)."""
    require_admin(actor)
    status = session.get(Status, key)
    if status is None:
        raise NotFound("Statut introuvable.")
    in_use = session.scalar(select(func.count()).select_from(Ticket).where(Ticket.status == key)) or 0
    if status.category == "new" and _count_in_category(session, "new") <= 1:
        raise Conflict("Il faut au moins un statut de catégorie « nouveau ».")
    if in_use:
        if not replacement:
            raise Conflict(
                f"Ce statut est utilisé par {in_use} ticket(s) : choisissez un statut de remplacement.",
                {"in_use": in_use},
            )
        target = session.get(Status, replacement)
        if target is None or target.key == key:
            raise InvalidInput("Statut de remplacement invalide.")
        from comptoir_tickets import tickets as ticket_ops

        now = utcnow()
        for ticket in session.scalars(select(Ticket).where(Ticket.status == key).with_for_update()):
            old_category = ticket.status_category
            ticket.status = target.key
            if old_category != target.category:
                ticket_ops.apply_category_change(session, ticket, old_category, target.category, now)
    session.delete(status)
    session.flush()


# --- types ---------------------------------------------------------------------------------------------------


def add_type(session: Session, *, actor: dict, label: str) -> TicketType:
    require_admin(actor)
    label = _label(label, "du type")
    position = (session.scalar(select(func.max(TicketType.position))) or 0) + 1
    ticket_type = TicketType(key=_unique_key(session, TicketType, label), label=label, position=position)
    session.add(ticket_type)
    session.flush()
    return ticket_type


def update_type(
    session: Session, *, actor: dict, key: str, label: str | None = None, position: int | None = None
) -> TicketType:
    require_admin(actor)
    ticket_type = session.get(TicketType, key)
    if ticket_type is None:
        raise NotFound("Type introuvable.")
    if label is not None:
        ticket_type.label = _label(label, "du type")
    if position is not None:
        ticket_type.position = int(position)
    return ticket_type


def remove_type(session: Session, *, actor: dict, key: str, replacement: str | None = None) -> None:
    """Remove a type; tickets of it move to ``replacement`` (or to no type)."""
    require_admin(actor)
    ticket_type = session.get(TicketType, key)
    if ticket_type is None:
        raise NotFound("Type introuvable.")
    if replacement is not None and (replacement == key or session.get(TicketType, replacement) is None):
        raise InvalidInput("Type de remplacement invalide.")
    session.execute(update(Ticket).where(Ticket.type == key).values(type=replacement))
    session.delete(ticket_type)
    session.flush()


# --- priorities ----------------------------------------------------------------------------------------------


def _target(value: Any) -> int:
    try:
        minutes = int(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput("Le délai doit être un nombre de minutes ouvrées.") from exc
    if not 1 <= minutes <= 60 * 24 * 365:
        raise InvalidInput("Le délai doit être compris entre 1 minute et un an.")
    return minutes


def add_priority(session: Session, *, actor: dict, label: str, target_minutes: int) -> Priority:
    require_admin(actor)
    label = _label(label, "de la priorité")
    position = (session.scalar(select(func.max(Priority.position))) or 0) + 1
    priority = Priority(
        key=_unique_key(session, Priority, label),
        label=label,
        target_minutes=_target(target_minutes),
        position=position,
    )
    session.add(priority)
    session.flush()
    return priority


def update_priority(
    session: Session,
    *,
    actor: dict,
    key: str,
    label: str | None = None,
    target_minutes: int | None = None,
    position: int | None = None,
    is_default: bool | None = None,
) -> Priority:
    """Change a priority; a new target recomputes the deadline of every open ticket of that priority."""
    require_admin(actor)
    priority = session.get(Priority, key)
    if priority is None:
        raise NotFound("Priorité introuvable.")
    if label is not None:
        priority.label = _label(label, "de la priorité")
    if position is not None:
        priority.position = int(position)
    if is_default:
        session.execute(update(Priority).values(is_default=False))
        priority.is_default = True
    if target_minutes is not None and _target(target_minutes) != priority.target_minutes:
        priority.target_minutes = _target(target_minutes)
        from comptoir_tickets import tickets as ticket_ops

        ticket_ops.recompute_deadlines(
            session, Ticket.priority == key, target_minutes=priority.target_minutes
        )
    session.flush()
    return priority


def remove_priority(session: Session, *, actor: dict, key: str, replacement: str | None = None) -> None:
    require_admin(actor)
    priority = session.get(Priority, key)
    if priority is None:
        raise NotFound("Priorité introuvable.")
    in_use = session.scalar(select(func.count()).select_from(Ticket).where(Ticket.priority == key)) or 0
    if in_use:
        target = session.get(Priority, replacement) if replacement else None
        if target is None or target.key == key:
            raise Conflict(
                f"Cette priorité est utilisée par {in_use} ticket(s) : choisissez une priorité de remplacement.",
                {"in_use": in_use},
            )
        from comptoir_tickets import tickets as ticket_ops

        session.execute(update(Ticket).where(Ticket.priority == key).values(priority=target.key))
        ticket_ops.recompute_deadlines(
            session, Ticket.priority == target.key, target_minutes=target.target_minutes
        )
    session.delete(priority)
    session.flush()
    if session.scalar(select(func.count()).select_from(Priority).where(Priority.is_default)) == 0:
        first = session.scalar(select(Priority).order_by(Priority.position).limit(1))
        if first is not None:
            first.is_default = True


# --- calendar and limits -------------------------------------------------------------------------------------


def set_calendar(session: Session, *, actor: dict, config: dict) -> dict:
    """Replace the business calendar (validated) and recompute every running deadline."""
    require_admin(actor)
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(config.get("timezone") or "Europe/Paris")
        parsed = sla.calendar_from_config(config)
    except Exception as exc:
        raise InvalidInput(
            "Calendrier invalide : vérifiez les horaires (HH:MM, fermeture après ouverture), "
            "les jours ouvrés et les dates (AAAA-MM-JJ)."
        ) from exc
    clean = sla.calendar_to_config(parsed)
    row = session.get(Setting, CALENDAR_KEY)
    if row is None:
        session.add(Setting(key=CALENDAR_KEY, value=clean))
    else:
        row.value = clean
    session.flush()
    from comptoir_tickets import tickets as ticket_ops

    ticket_ops.recompute_deadlines(session, None)
    return clean


def set_attachment_limit(session: Session, *, actor: dict, limit_bytes: int) -> int:
    require_admin(actor)
    limit = int(limit_bytes)
    if not 1024 <= limit <= 1024**3:
        raise InvalidInput("La taille maximale doit être comprise entre 1 Ko et 1 Go.")
    row = session.get(Setting, ATTACHMENT_LIMIT_KEY)
    if row is None:
        session.add(Setting(key=ATTACHMENT_LIMIT_KEY, value={"bytes": limit}))
    else:
        row.value = {"bytes": limit}
    return limit


# --- canned responses ----------------------------------------------------------------------------------------


def _canned_fields(title: Any, body: Any) -> tuple[str, str]:
    title = (title or "").strip()
    body = (body or "").strip()
    if not title or not body:
        raise InvalidInput("Le titre et le texte de la réponse sont obligatoires.")
    if len(title) > 200:
        raise InvalidInput("Le titre ne doit pas dépasser 200 caractères.")
    return title, body


def add_canned(session: Session, *, actor: dict, title: str, body: str) -> CannedResponse:
    require_admin(actor)
    title, body = _canned_fields(title, body)
    position = (session.scalar(select(func.max(CannedResponse.position))) or 0) + 1
    canned = CannedResponse(title=title, body=body, position=position)
    session.add(canned)
    session.flush()
    return canned


def update_canned(session: Session, *, actor: dict, canned_id: str, title: str, body: str) -> CannedResponse:
    require_admin(actor)
    canned = session.get(CannedResponse, canned_id)
    if canned is None:
        raise NotFound("Réponse prédéfinie introuvable.")
    canned.title, canned.body = _canned_fields(title, body)
    return canned


def remove_canned(session: Session, *, actor: dict, canned_id: str) -> None:
    require_admin(actor)
    canned = session.get(CannedResponse, canned_id)
    if canned is None:
        raise NotFound("Réponse prédéfinie introuvable.")
    session.delete(canned)


def render_canned(body: str, *, customer_name: str, number: int | str, agent_name: str) -> str:
    """Fill the placeholders {client}, {numero} and {agent}; unknown braces stay as written."""
    return (
        body.replace("{client}", customer_name or "")
        .replace("{numero}", str(number))
        .replace("{agent}", agent_name or "")
    )
