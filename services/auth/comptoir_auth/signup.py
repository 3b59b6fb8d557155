"""Sign-up requests ("demande de création de compte"): a public form, an acknowledgement, an admin's decision."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from comptoir_common.db import utcnow
from comptoir_common.errors import Conflict, InvalidInput, NotFound, TooManyRequests
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from comptoir_auth import audit, mails, users
from comptoir_auth.models import CUSTOMER_ROLES, SignupRequest, User
from comptoir_auth.policy import require_admin

# The public form must not become a way to flood someone's inbox or the admins' list.
REPEAT_WINDOW = timedelta(hours=1)
MAX_REQUESTS_PER_ADDRESS = 10
ACKNOWLEDGEMENT = (
    "Votre demande a bien été enregistrée. Vous allez recevoir un e-mail de confirmation ; un superviseur "
    "l'examinera rapidement."
)


def request_to_dict(row: SignupRequest, existing_user_id: str | None = None) -> dict[str, Any]:
    return {
        "id": row.id,
        "email": row.email,
        "name": row.name,
        "company": row.company,
        "phone": row.phone,
        "message": row.message,
        "status": row.status,
        "created_at": row.created_at.isoformat(),
        "decided_at": row.decided_at.isoformat() if row.decided_at else None,
        "decision_note": row.decision_note,
        "user_id": row.user_id,
        "existing_user_id": existing_user_id,
    }


def request_signup(
    session: Session,
    *,
    email: str,
    name: str,
    company: str = "",
    phone: str | None = None,
    message: str = "",
    client: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Record a pending request and acknowledge it by mail; the answer is the same whether an account exists."""
    email = users.normalise_email(email)
    if not users._EMAIL_PATTERN.match(email):
        raise InvalidInput("Adresse e-mail invalide.", {"field": "email"})
    name = (name or "").strip()
    if not name:
        raise InvalidInput("Le nom est obligatoire.", {"field": "name"})
    ip, _ = audit.client_info(client)
    since = utcnow() - REPEAT_WINDOW
    if ip:
        recent = session.scalar(
            select(func.count())
            .select_from(SignupRequest)
            .where(SignupRequest.ip == ip, SignupRequest.created_at > since)
        )
        if recent >= MAX_REQUESTS_PER_ADDRESS:
            raise TooManyRequests("Trop de demandes envoyées depuis votre adresse. Réessayez dans une heure.")
    repeated = session.scalar(
        select(SignupRequest.id).where(
            SignupRequest.email == email, SignupRequest.status == "pending", SignupRequest.created_at > since
        )
    )
    if repeated is not None:  # already acknowledged within the hour: same answer, no second mail
        return {"message": ACKNOWLEDGEMENT}
    row = SignupRequest(
        email=email,
        name=name[:200],
        company=(company or "").strip()[:200],
        phone=(phone or "").strip()[:50] or None,
        message=(message or "").strip()[:5000],
        ip=ip,
    )
    session.add(row)
    session.flush()
    mails.queue_account_mail(
        session, kind="signup_received", recipient=email, context={"name": row.name, "company": row.company}
    )
    audit.record(session, "signup.requested", email=email, client=client, details={"request_id": row.id})
    return {"message": ACKNOWLEDGEMENT}


def list_requests(
    session: Session, actor: dict[str, Any], *, status: str | None = "pending"
) -> list[dict[str, Any]]:
    require_admin(actor)
    query = select(SignupRequest).order_by(SignupRequest.created_at.desc()).limit(500)
    if status:
        query = query.where(SignupRequest.status == status)
    rows = session.scalars(query).all()
    emails = {row.email for row in rows}
    existing = (
        dict(session.execute(select(User.email, User.id).where(User.email.in_(emails))).all())
        if emails
        else {}
    )
    return [request_to_dict(row, existing.get(row.email)) for row in rows]


def _get(session: Session, request_id: str) -> SignupRequest:
    row = session.get(SignupRequest, request_id or "")
    if row is None:
        raise NotFound("Demande introuvable.")
    return row


def get_request(session: Session, actor: dict[str, Any], request_id: str) -> dict[str, Any]:
    require_admin(actor)
    row = _get(session, request_id)
    existing = session.scalar(select(User.id).where(User.email == row.email))
    return request_to_dict(row, existing)


def approve(
    session: Session,
    actor: dict[str, Any],
    request_id: str,
    *,
    customer_id: str,
    role: str = "client",
    public_url: str,
    client: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Create the client (or reseller) account tied to ``customer_id``; the person gets the invitation."""
    require_admin(actor)
    row = _get(session, request_id)
    if row.status != "pending":
        raise Conflict("Cette demande a déjà été traitée.")
    if role not in CUSTOMER_ROLES:
        raise InvalidInput("Une demande de compte crée un compte client ou revendeur.", {"field": "role"})
    if not (customer_id or "").strip():
        raise InvalidInput("Choisissez la société du demandeur.", {"field": "customer_id"})
    user = users.admin_create_user(
        session,
        actor,
        public_url=public_url,
        client=client,
        email=row.email,
        name=row.name,
        role=role,
        customer_id=customer_id.strip(),
        phone=row.phone,
    )
    row.status = "approved"
    row.decided_at = utcnow()
    row.decided_by = actor["id"]
    row.user_id = user.id
    audit.record(
        session, "signup.approved", user=user, actor=actor, client=client, details={"request_id": row.id}
    )
    return request_to_dict(row, user.id)


def reject(
    session: Session,
    actor: dict[str, Any],
    request_id: str,
    *,
    note: str = "",
    client: dict[str, Any] | None = None,
) -> dict[str, Any]:
    require_admin(actor)
    row = _get(session, request_id)
    if row.status != "pending":
        raise Conflict("Cette demande a déjà été traitée.")
    row.status = "rejected"
    row.decided_at = utcnow()
    row.decided_by = actor["id"]
    row.decision_note = (note or "").strip()[:2000] or None
    mails.queue_account_mail(session, kind="signup_rejected", recipient=row.email, context={"name": row.name})
    audit.record(
        session,
        "signup.rejected",
        email=row.email,
        actor=actor,
        client=client,
        details={"request_id": row.id},
    )
    return request_to_dict(row)
