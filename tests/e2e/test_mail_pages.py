"""The mail pages over the real processes (plain HTTP): threading reasons and moving a mail on the ticket page,
the quarantine (look, replay, discard) and the notification templates, each checked per role."""

from __future__ import annotations

import html as html_lib
import re
import uuid

import pytest
from comptoir_mail_ingest.models import RawMail
from comptoir_testing import mails
from comptoir_tickets.models import EmailIntake, Ticket
from sqlalchemy import select

from tests.e2e.mail_helpers import deliver, store_query, wait_known_sender
from tests.e2e.ticket_helpers import Person, customer_upserted, wait_until, web_login


@pytest.fixture(scope="module")
def people(system):
    """One person per role for the module (every staff account gets the suite's triage mails: few of them), the
    client's company managed by the sales rep; mail-ingest knows the client's address."""
    from comptoir_tickets.models import Customer

    with system.client() as http:
        sales = Person(system, http, "sales", name="Serge Commercial")
        customer_id = customer_upserted(system.amqp_uri, f"Boulangerie {uuid.uuid4().hex[:6]}", sales.id)
        client = Person(system, http, "client", customer_id=customer_id, name="Claire Cliente")
        agent = Person(system, http, "agent", name="Agathe Agent")
        admin = Person(system, http, "admin", name="Alice Admin")
    wait_until(
        lambda: store_query(system, lambda s: s.get(Customer, customer_id) is not None), 60, "customer"
    )
    wait_known_sender(system, client.email)
    return {"client": client, "sales": sales, "agent": agent, "admin": admin}


def _intake(system, message_id: str) -> dict | None:
    def find(session):
        intake = session.scalar(select(EmailIntake).where(EmailIntake.message_key == message_id.strip("<>")))
        if intake is None:
            return None
        ticket = session.get(Ticket, intake.ticket_id)
        return {"ticket_id": ticket.id, "number": ticket.number, "message_id": intake.message_id}

    return store_query(system, find)


def _wait_intake(system, message_id: str) -> dict:
    wait_until(lambda: _intake(system, message_id) is not None, 120, f"mail {message_id} taken in")
    return _intake(system, message_id)


def _raw_mail(system, subject: str) -> dict | None:
    def find(session):
        row = session.scalar(select(RawMail).where(RawMail.subject == subject))
        return None if row is None else {"id": row.id, "status": row.status, "attempts": row.attempts}

    return store_query(system, find, "mail_ingest")


def test_threading_reasons_and_moving_a_mail_from_the_ticket_page(system, people):
    maildir = system.workdir / "data" / "maildir"
    tag = uuid.uuid4().hex[:6]
    client = people["client"]
    original_id, reply_id, stray_id = (mails.new_message_id() for _ in range(3))
    deliver(
        maildir,
        f"{tag}-1.eml",
        mails.simple(sender=client.email, subject=f"Fax {tag}", message_id=original_id),
    )
    first = _wait_intake(system, original_id)
    deliver(
        maildir,
        f"{tag}-2.eml",
        mails.simple(
            sender=client.email,
            subject=f"Re: Fax {tag}",
            message_id=reply_id,
            in_reply_to=original_id,
            references=original_id,
            body="Toujours rien.",
        ),
    )
    stranger = f"inconnu.{tag}@ailleurs.example"
    deliver(
        maildir, f"{tag}-3.eml", mails.simple(sender=stranger, subject=f"Question {tag}", message_id=stray_id)
    )
    reply = _wait_intake(system, reply_id)
    stray = _wait_intake(system, stray_id)
    assert reply["ticket_id"] == first["ticket_id"] and stray["ticket_id"] != first["ticket_id"]

    # A client sees their mails on their ticket, never how they were threaded, and cannot move one.
    with system.client() as http:
        web_login(http, client)
        page = http.get(f"/tickets/{first['ticket_id']}")
        assert page.status_code == 200 and "Toujours rien." in page.text
        assert (
            "Rattachement" not in page.text and "déjà reçu" not in page.text and "deplacer" not in page.text
        )
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        refused = http.post(
            f"/tickets/{first['ticket_id']}/messages/{reply['message_id']}/deplacer",
            data={"target_number": str(stray["number"]), "csrf_token": csrf},
        )
        assert refused.status_code == 403

    # The sales rep of the client's company reads the reasons but has no move button.
    with system.client() as http:
        web_login(http, people["sales"])
        page = http.get(f"/tickets/{stray['ticket_id']}")
        assert "Rattachement : nouveau ticket — Aucune référence à un ticket existant" in page.text
        assert "Déplacer" not in page.text

    with system.client() as http:
        csrf = web_login(http, people["agent"])
        page = http.get(f"/tickets/{first['ticket_id']}")
        assert "Réponse à un e-mail déjà reçu sur ce ticket" in page.text
        assert f"/messages/{reply['message_id']}/deplacer" in page.text
        unknown = http.post(
            f"/tickets/{stray['ticket_id']}/messages/{stray['message_id']}/deplacer",
            data={"target_number": "99999999", "csrf_token": csrf},
        )
        assert unknown.status_code == 404 and "Aucun ticket n° 99999999" in unknown.text
        moved = http.post(
            f"/tickets/{stray['ticket_id']}/messages/{stray['message_id']}/deplacer",
            data={"target_number": str(first["number"]), "csrf_token": csrf},
        )
        assert moved.status_code == 200 and str(moved.url).endswith(f"/tickets/{first['ticket_id']}?moved=1")
        assert "a été déplacé sur ce ticket" in moved.text
        assert f"déplacé du ticket n° {stray['number']} par Agathe Agent" in moved.text
        assert "a déplacé un e-mail sur ce ticket" in moved.text
        source = http.get(f"/tickets/{stray['ticket_id']}")
        assert "a déplacé un e-mail vers un autre ticket" in source.text
    # The client never sees the move (an internal history entry) nor the reason, only the message.
    with system.client() as http:
        web_login(http, client)
        page = http.get(f"/tickets/{first['ticket_id']}")
        assert "déplacé" not in page.text and "Rattachement" not in page.text


def test_quarantine_page_replay_and_discard_admin_only(system, people):
    maildir = system.workdir / "data" / "maildir"
    subject = f"Sans expediteur {uuid.uuid4().hex[:6]}"  # ASCII: raw header bytes
    raw = (
        f"To: support@comptoir.local\r\nSubject: {subject}\r\nMessage-ID: {mails.new_message_id()}\r\n"
        "X-Trace: visible-dans-les-en-tetes\r\n\r\nPas de From.\r\n"
    ).encode()
    deliver(maildir, f"{uuid.uuid4().hex}.eml", raw)
    wait_until(lambda: (_raw_mail(system, subject) or {}).get("status") == "quarantined", 120, "quarantine")
    mail_id = _raw_mail(system, subject)["id"]

    for role in ("client", "sales", "agent"):
        with system.client() as http:
            web_login(http, people[role])
            home = http.get("/")
            assert "/admin/courriels" not in home.text and "/admin/modeles-courriels" not in home.text
            for path in ("/admin/courriels", f"/admin/courriels/{mail_id}", "/admin/modeles-courriels"):
                assert http.get(path).status_code == 403, (role, path)
            assert http.get(f"/tickets/{uuid.uuid4()}").status_code == 404

    with system.client() as http:
        csrf = web_login(http, people["admin"])
        assert "/admin/courriels" in http.get("/").text
        listing = http.get("/admin/courriels")
        assert listing.status_code == 200 and subject in listing.text and "Expéditeur absent" in listing.text
        assert "Boîtes aux lettres" in listing.text
        detail = http.get(f"/admin/courriels/{mail_id}")
        assert "X-Trace: visible-dans-les-en-tetes" in detail.text and "Pas de From." not in detail.text

        replayed = http.post(f"/admin/courriels/{mail_id}/rejouer", data={"csrf_token": csrf})
        assert replayed.status_code == 200 and "remis dans la file" in replayed.text
        # Processed again on the next pass (and quarantined again: nothing was fixed).
        wait_until(lambda: _raw_mail(system, subject)["attempts"] == 2, 120, "replay")
        wait_until(lambda: _raw_mail(system, subject)["status"] == "quarantined", 60, "quarantined again")

        unconfirmed = http.post(f"/admin/courriels/{mail_id}/supprimer", data={"csrf_token": csrf})
        assert unconfirmed.status_code == 422 and "Cochez la case de confirmation" in unconfirmed.text
        assert _raw_mail(system, subject)["status"] == "quarantined"
        for action in ("rejouer", "supprimer"):
            forged = http.post(
                f"/admin/courriels/{mail_id}/{action}", data={"csrf_token": "x", "confirm": "1"}
            )
            assert forged.status_code == 400 and "expiré" in forged.text and subject in forged.text
        assert _raw_mail(system, subject)["status"] == "quarantined"
        discarded = http.post(
            f"/admin/courriels/{mail_id}/supprimer", data={"csrf_token": csrf, "confirm": "1"}
        )
        assert discarded.status_code == 200 and "supprimé de la liste" in discarded.text
        assert subject not in discarded.text
        assert _raw_mail(system, subject)["status"] == "discarded"


def test_admin_adjusts_a_notification_template_and_the_next_mail_uses_it(system, people):
    maildir = system.workdir / "data" / "maildir"
    with system.client() as http:
        csrf = web_login(http, people["admin"])
        listing = http.get("/admin/modeles-courriels")
        assert listing.status_code == 200 and "Accusé de réception" in listing.text
        page = http.get("/admin/modeles-courriels/ticket_created")
        assert (
            page.status_code == 200 and "Texte d'origine" in page.text and "<code>ticket</code>" in page.text
        )
        text = re.search(r'<textarea id="text"[^>]*>(.*?)</textarea>', page.text, re.S).group(1)
        html = re.search(r'<textarea id="html"[^>]*>(.*?)</textarea>', page.text, re.S).group(1)
        text, html = html_lib.unescape(text), html_lib.unescape(html)
        broken = http.post(
            "/admin/modeles-courriels/ticket_created",
            data={"subject": "Bien reçu {{ ticket.number", "text": text, "html": html, "csrf_token": csrf},
        )
        assert broken.status_code == 422 and "Objet, ligne 1 : erreur de syntaxe" in broken.text
        assert "Bien reçu {{ ticket.number" in broken.text  # what was typed is kept
        forged = http.post(
            "/admin/modeles-courriels/ticket_created",
            data={"subject": "Objet forgé", "text": text, "html": html, "csrf_token": "x"},
        )
        assert forged.status_code == 400 and "expiré" in forged.text and "Objet forgé" in forged.text
        forged = http.post("/admin/modeles-courriels/ticket_created/reinitialiser", data={"csrf_token": "x"})
        assert forged.status_code == 400 and "expiré" in forged.text
        try:
            saved = http.post(
                "/admin/modeles-courriels/ticket_created",
                data={
                    "subject": "Bien reçu : [#{{ ticket.number }}] {{ ticket.title }}",
                    "text": text,
                    "html": html,
                    "csrf_token": csrf,
                },
            )
            assert saved.status_code == 200 and "Le modèle est enregistré" in saved.text
            assert "adapté le" in saved.text and "Alice Admin" in saved.text

            sender = people["client"].email  # a known client: no triage mail to every staff member
            subject = f"Imprimante {uuid.uuid4().hex[:6]}"
            deliver(maildir, f"{uuid.uuid4().hex}.eml", mails.simple(sender=sender, subject=subject))
            ack = system.smtp.wait_for(
                lambda m: m["To"] == sender and subject in str(m["Subject"]), timeout=120
            )
            assert ack["Subject"].startswith("Bien reçu : [#") and ack["Subject"].endswith(subject)
        finally:
            reset = http.post(
                "/admin/modeles-courriels/ticket_created/reinitialiser", data={"csrf_token": csrf}
            )
            assert reset.status_code == 200 and "Le modèle d&#39;origine est rétabli" in reset.text
