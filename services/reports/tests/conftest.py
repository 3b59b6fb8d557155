"""Tests of the reports domain against a real PostgreSQL database, each inside a transaction rolled back at the end.

The known data set (``story``) is five tickets whose figures were computed by hand; see test_figures.py.
"""

from __future__ import annotations

import pytest
from comptoir_testing.fixtures import service_session_fixtures

engine, session = service_session_fixtures("reports")


@pytest.fixture
def known_set():
    """Five tickets in the week of Monday 23 November 2026 (Paris), with hand-computed figures.

    T1 urgent, Alpha: created Mon 09:00, internal note 09:15, answered 09:30, closed 11:00 (2 h; due 13:00: met).
    T2 normal, Beta: created Fri 27 17:00, answered Mon 30 09:00, closed Mon 10:30 across the weekend
       (65.5 h wall, 3 h business; due Tue 1 Dec 17:00: met).
    T3 high, Alpha, type billing: created Tue 24 10:00, answered 11:00, closed 12:00, reopened Wed 09:00, closed
       Wed 14:00 (28 h wall, 13.5 h business; due Tue 18:00: breached).
    T4 normal, from an unknown sender: attached to Alpha Wed 25 09:30, moved to Beta 10:00; open, assigned to G2.
    T5 urgent, Beta: created Thu 26 14:00, SLA breached 18:00, pending, unassigned.
    """
    from datetime import datetime
    from types import SimpleNamespace
    from zoneinfo import ZoneInfo

    from comptoir_testing.ticket_events import TicketStory, person

    paris = ZoneInfo("Europe/Paris")

    def at(day: int, hour: int, minute: int = 0) -> datetime:
        month = 12 if day < 20 else 11
        return datetime(2026, month, day, hour, minute, tzinfo=paris)

    alpha, beta = "00000000-0000-4000-8000-0000000a1fa0", "00000000-0000-4000-8000-00000000be7a"
    sales_alpha = person("Sophie Commerciale", "sales")
    sales_beta = person("Serge Commercial", "sales")
    admin = person("Anne Superviseure", "admin")
    g1 = person("Gaston Technicien", "agent")
    g2 = person("Gisèle Technicienne", "agent")
    c1 = person("Claire Alpha", "client", alpha)
    c2 = person("Charles Beta", "client", beta)

    t1 = TicketStory(
        created_at=at(23, 9),
        requester=c1,
        customer_id=alpha,
        type="incident",
        priority="urgent",
        resolution_due_at=at(23, 13),
    )
    t1.assign(g1, by=admin, at=at(23, 9, 10)).reply(g1, at=at(23, 9, 15), internal=True)
    t1.reply(g1, at=at(23, 9, 30)).reply(c1, at=at(23, 9, 45)).close(g1, at=at(23, 11))

    t2 = TicketStory(
        created_at=at(27, 17),
        requester=c2,
        customer_id=beta,
        type="incident",
        priority="normal",
        resolution_due_at=at(1, 17),
    )
    t2.assign(g2, by=admin, at=at(27, 17, 5)).set_status("open", g2, at=at(30, 8, 45))
    t2.reply(g2, at=at(30, 9)).close(g2, at=at(30, 10, 30))

    t3 = TicketStory(
        created_at=at(24, 10),
        requester=c1,
        customer_id=alpha,
        type="billing",
        priority="high",
        resolution_due_at=at(24, 18),
    )
    t3.assign(g1, by=admin, at=at(24, 10, 5)).reply(g1, at=at(24, 11)).close(g1, at=at(24, 12))
    t3.reopen(c1, at=at(25, 9)).close(g1, at=at(25, 14))

    t4 = TicketStory(
        created_at=at(25, 9),
        requester_email="Inconnu@Exemple.test",
        type="incident",
        priority="normal",
        source="email",
    )
    t4.attach_customer(alpha, sales_alpha, at=at(25, 9, 30)).update(g2, at=at(25, 10), customer_id=beta)
    t4.assign(g2, by=g2, at=at(25, 10, 5)).set_status("open", g2, at=at(25, 10, 6))
    t4.reply(g2, at=at(25, 10, 10), internal=True)

    t5 = TicketStory(
        created_at=at(26, 14),
        requester=c2,
        customer_id=beta,
        type="incident",
        priority="urgent",
        resolution_due_at=at(26, 18),
    )
    t5.set_status("pending", g1, at=at(26, 15)).breach_sla(at=at(26, 18))

    stories = [t1, t2, t3, t4, t5]
    return SimpleNamespace(
        alpha=alpha,
        beta=beta,
        sales_alpha=sales_alpha,
        sales_beta=sales_beta,
        admin=admin,
        g1=g1,
        g2=g2,
        c1=c1,
        c2=c2,
        stories=stories,
        events=[event for story in stories for event in story.events],
        period={"start": "2026-11-23", "end": "2026-11-30"},
    )


@pytest.fixture
def directory_loaded(session, known_set):
    """The read models as crm_sync and auth events would have filled them."""
    from comptoir_reports import directory

    ks = known_set
    directory.upsert_customer(
        session, {"id": ks.alpha, "name": "Alpha SARL", "sales_rep_id": ks.sales_alpha["id"]}
    )
    directory.upsert_customer(
        session, {"id": ks.beta, "name": "Beta SAS", "sales_rep_id": ks.sales_beta["id"]}
    )
    for who in (ks.sales_alpha, ks.sales_beta, ks.admin, ks.g1, ks.g2, ks.c1, ks.c2):
        directory.upsert_user(session, {**who, "active": True})
    session.flush()
    return ks
