"""Admins' adjusted templates: checked when saved, used for the next mails, reset to the packaged wording."""

from __future__ import annotations

import uuid

import pytest
from comptoir_common.errors import InvalidInput, NotFound
from comptoir_common.events import Event, system_actor
from comptoir_notifier import notifications, rendering
from comptoir_notifier.models import OutgoingMail, TemplateOverride
from sqlalchemy import select

CONTEXT = notifications.MailContext(
    public_url="https://support.example",
    mail_domain="comptoir.local",
    support_address="support@comptoir.local",
)


def ticket_created_event() -> Event:
    ticket = {
        "id": str(uuid.uuid4()),
        "number": 1042,
        "title": "Ligne coupée",
        "status": "new",
        "status_category": "new",
        "customer_id": str(uuid.uuid4()),
        "requester": {"id": None, "email": f"{uuid.uuid4().hex[:8]}@client.example", "name": "Claire"},
        "assignees": [],
        "source": "web",
    }
    message = {"id": str(uuid.uuid4()), "author": {"id": None}, "body": "Plus de tonalité", "internal": False}
    return Event(
        type="ticket.created", actor=system_actor("web"), data=ticket | {"ticket": ticket, "message": message}
    )


@pytest.fixture(autouse=True)
def fresh_overrides():
    rendering._forget_overrides()
    yield
    rendering._forget_overrides()  # the rolled-back rows must not linger in this process's cache


def _ack(session, event):
    notifications.on_ticket_created(session, event, CONTEXT)
    return session.scalars(
        select(OutgoingMail).where(OutgoingMail.event_id == event.id, OutgoingMail.kind == "ticket_created")
    ).one()


def test_adjusted_wording_is_used_for_the_next_mails_and_reset_restores_it(session):
    names = {item["name"] for item in rendering.list_templates(session)}
    assert {"ticket_created", "ticket_reply", "account_invitation"} <= names
    assert "base" not in names and "account_base" not in names
    described = rendering.describe(session, "ticket_created")
    assert described["adjusted"][".txt"] is None and "ticket" in described["variables"]

    rendering.save(
        session,
        "ticket_created",
        {".subject.txt": "Bien reçu : [#{{ ticket.number }}] {{ ticket.title }}"},
        "Alice Admin",
    )
    mail = _ack(session, ticket_created_event())
    assert mail.subject == "Bien reçu : [#1042] Ligne coupée"
    assert "Plus de tonalité" in mail.body_text  # the other parts keep the packaged wording
    listed = {item["name"]: item for item in rendering.list_templates(session)}
    assert listed["ticket_created"]["adjusted_by"] == "Alice Admin"

    rendering.reset(session, "ticket_created")
    assert session.scalar(select(TemplateOverride)) is None
    mail = _ack(session, ticket_created_event())
    assert not mail.subject.startswith("Bien reçu")


def test_a_template_that_would_not_render_is_refused_with_a_french_reason(session):
    with pytest.raises(InvalidInput, match="ligne 2 : erreur de syntaxe"):
        rendering.save(session, "ticket_reply", {".txt": "Bonjour,\n{% if ticket %}oups"}, "Alice")
    with pytest.raises(InvalidInput, match="variable inconnue mot_de_passe"):
        rendering.save(session, "ticket_reply", {".html": "<p>{{ mot_de_passe }}</p>"}, "Alice")
    with pytest.raises(InvalidInput, match="vide"):
        rendering.save(session, "ticket_reply", {".subject.txt": "  "}, "Alice")
    with pytest.raises(NotFound):
        rendering.save(session, "inconnu", {".txt": "x"}, "Alice")
    assert session.scalar(select(TemplateOverride)) is None
    # Saving the packaged text is no adjustment.
    packaged = rendering.describe(session, "ticket_reply")["defaults"][".txt"]
    rendering.save(session, "ticket_reply", {".txt": packaged}, "Alice")
    assert session.scalar(select(TemplateOverride)) is None


def test_an_adjusted_template_failing_at_render_time_falls_back_to_the_packaged_one(session):
    # Passes the checks (known variable) but fails when rendered (no such attribute): the mail still goes out.
    session.add(TemplateOverride(filename="ticket_created.txt", source="{{ ticket.pas_un_champ }}"))
    session.flush()
    mail = _ack(session, ticket_created_event())
    assert "Plus de tonalité" in mail.body_text
