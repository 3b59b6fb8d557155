"""The first admin and a little demo data, so that a fresh ``make dev`` has something to show. Idempotent."""

from __future__ import annotations

import os
from dataclasses import dataclass

from comptoir_common.db import make_engine, make_session_factory, session_scope
from sqlalchemy import func, select

from comptoir_dev.registry import service

DEFAULT_ADMIN_EMAIL = "admin@comptoir.local"
DEFAULT_ADMIN_PASSWORD = "Comptoir-admin-2026"
# The demo customer's id; the customer directory (crm-sync) seeds the same id for its demo company.
DEMO_CUSTOMER_ID = "00000000-0000-4000-8000-00000000c001"
DEMO_PASSWORD = "Comptoir-demo-2026"


@dataclass(frozen=True)
class SeededLogin:
    email: str
    password: str
    created: bool


def seed_admin() -> SeededLogin:
    """Create the first admin from ``COMPTOIR_ADMIN_EMAIL`` / ``COMPTOIR_ADMIN_PASSWORD`` unless it exists."""
    from comptoir_auth import users
    from comptoir_auth.models import User

    email = os.environ.get("COMPTOIR_ADMIN_EMAIL", DEFAULT_ADMIN_EMAIL)
    password = os.environ.get("COMPTOIR_ADMIN_PASSWORD", DEFAULT_ADMIN_PASSWORD)
    factory = _session_factory("auth")
    with session_scope(factory) as session:
        if session.scalar(select(User.id).where(User.email == users.normalise_email(email))):
            return SeededLogin(email, password, created=False)
        users.create_user(session, email=email, name="Administrateur", role="admin", password=password)
    return SeededLogin(email, password, created=True)


def seed_demo_customer() -> bool:
    """The demo company in the customer directory (crm_sync), with the demo client as its contact. True if created."""
    from comptoir_crm_sync import directory
    from comptoir_crm_sync.models import Customer

    with session_scope(_session_factory("crm_sync")) as session:
        if session.get(Customer, DEMO_CUSTOMER_ID) is not None:
            return False
        directory.create_customer(
            session,
            actor={"id": "seed", "role": "admin", "kind": "system", "name": "comptoir seed"},
            customer_id=DEMO_CUSTOMER_ID,
            payload={
                "name": "A6 Démo SARL",
                "account_number": "411DEMO",
                "phone": "04 72 00 00 00",
                "addresses": [
                    {
                        "street": "1 rue de la République",
                        "postal_code": "69002",
                        "city": "Lyon",
                        "country": "France",
                    }
                ],
                "email_domains": ["demo.comptoir.local"],
                "contacts": [
                    {
                        "name": "Claire Cliente",
                        "emails": ["client@demo.comptoir.local"],
                        "role": "Responsable informatique",
                    }
                ],
            },
        )
    return True


def seed_demo() -> list[SeededLogin]:
    """The demo company, a technician, a client of the demo company and two tickets, once."""
    seed_demo_customer()
    from comptoir_auth import users
    from comptoir_auth.models import User
    from comptoir_tickets import tickets
    from comptoir_tickets.models import Ticket

    demo_people = [
        ("technicien@demo.comptoir.local", "Thomas Technicien", "agent", None),
        ("client@demo.comptoir.local", "Claire Cliente", "client", DEMO_CUSTOMER_ID),
    ]
    logins = []
    created_users = {}
    with session_scope(_session_factory("auth")) as session:
        for email, name, role, customer_id in demo_people:
            user = session.scalar(select(User).where(User.email == email))
            created = user is None
            if created:
                user = users.create_user(
                    session,
                    email=email,
                    name=name,
                    role=role,
                    password=DEMO_PASSWORD,
                    customer_id=customer_id,
                )
            created_users[role] = users.user_to_dict(user)
            logins.append(SeededLogin(email, DEMO_PASSWORD, created))
    with session_scope(_session_factory("tickets")) as session:
        if (session.scalar(select(func.count()).select_from(Ticket)) or 0) == 0:
            client = created_users["client"]
            for title, message in (
                (
                    "Coupure de la ligne SDSL",
                    "Bonjour, notre ligne SDSL est coupée depuis ce matin 9h. Merci.",
                ),
                ("Demande de résiliation d'un numéro", "Nous souhaitons résilier le numéro 04 72 00 00 00."),
            ):
                tickets.create_ticket(session, actor=client, title=title, message=message, source="web")
    _seed_wiki(created_users["agent"])
    return logins


def _seed_wiki(agent: dict) -> None:
    """A general page and two pages of the demo customer's wiki (one shown to its contacts), once."""
    from comptoir_wiki import pages
    from comptoir_wiki.models import Page

    with session_scope(_session_factory("wiki")) as session:
        if (session.scalar(select(func.count()).select_from(Page)) or 0) > 0:
            return
        pages.create_page(
            session,
            actor=agent,
            title="Procédure d'astreinte",
            content="# Astreinte\n\n1. Vérifier la supervision.\n2. Appeler le client.\n3. Noter l'intervention "
            "dans la demande (`#numéro`).",
        )
        installation = pages.create_page(
            session,
            actor=agent,
            title="Installation",
            customer_id=DEMO_CUSTOMER_ID,
            tags=["réseau", "téléphonie"],
            content="## Réseau\n\n| Élément | Détail |\n|---|---|\n| Routeur | SDSL 4 Mb/s |\n"
            "| Standard | 3CX, 12 postes |\n\nAccès : voir [[Accès à distance]]. Coupure signalée : #1.",
        )
        pages.create_page(
            session,
            actor=agent,
            title="Guide du standard",
            customer_id=DEMO_CUSTOMER_ID,
            parent_id=installation.id,
            visible_to_customer=True,
            content="Pour **transférer un appel** : touche *Transfert*, numéro du poste, puis raccrocher.",
        )


def _session_factory(service_name: str):
    info = service(service_name)
    url = info.settings().effective_database_url
    return make_session_factory(make_engine(url, pool_size=1))
