"""Every change is a revision; history, diff, restore; concurrent edits never overwrite each other; events."""

from __future__ import annotations

import pytest
from comptoir_common.errors import Conflict, InvalidInput
from comptoir_wiki import pages
from comptoir_wiki.models import OutboxMessage
from sqlalchemy import select

CUSTOMER_A = "00000000-0000-4000-8000-0000000000aa"


def _events(session, page_id: str) -> list[dict]:
    rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.seq)).all()
    return [row.payload for row in rows if row.payload["data"]["id"] == page_id]


def test_each_change_is_a_revision_with_author_and_time(session, actors):
    agent, sales = actors["agent"], actors["sales"]
    page = pages.create_page(
        session, actor=agent, title="Installation", content="Standard 3CX", customer_id=CUSTOMER_A
    )
    pages.update_page(
        session, actor=sales, page_id=page.id, base_revision=1, content="Standard 3CX v18", comment="Version"
    )
    history = pages.list_revisions(session, actor=agent, page_id=page.id)["revisions"]
    assert [(r["number"], r["author"]["name"], r["comment"]) for r in history] == [
        (2, "Sophie Commerciale", "Version"),
        (1, "Thomas Technicien", None),
    ]
    assert history[0]["created_at"] >= history[1]["created_at"]
    assert pages.get_revision(session, actor=agent, page_id=page.id, number=1)["content"] == "Standard 3CX"


def test_saving_without_change_makes_no_revision(session, actors):
    page = pages.create_page(session, actor=actors["agent"], title="Stable", content="x")
    pages.update_page(
        session, actor=actors["agent"], page_id=page.id, base_revision=1, content="x", title="Stable"
    )
    assert page.revision == 1
    assert len(_events(session, page.id)) == 1


def test_diff_between_two_revisions(session, actors):
    agent = actors["agent"]
    page = pages.create_page(session, actor=agent, title="Réseau", content="routeur\nswitch\nborne wifi")
    pages.update_page(
        session, actor=agent, page_id=page.id, base_revision=1, content="routeur\nswitch PoE\nborne wifi"
    )
    pages.update_page(
        session, actor=agent, page_id=page.id, base_revision=2, title="Réseau local", tags=["réseau"]
    )
    diff = pages.diff_revisions(session, actor=agent, page_id=page.id, from_number=1, to_number=3)
    assert diff["title_changed"] and diff["tags_changed"]
    assert (diff["content"]["added"], diff["content"]["removed"]) == (1, 1)
    changed = [(line["op"], line["text"]) for line in diff["content"]["lines"] if line["op"] != "equal"]
    assert changed == [("delete", "switch"), ("insert", "switch PoE")]


def test_restore_makes_a_new_revision_with_the_old_state(session, actors):
    agent = actors["agent"]
    page = pages.create_page(session, actor=agent, title="Codes", content="v1", tags=["accès"])
    pages.update_page(session, actor=agent, page_id=page.id, base_revision=1, content="v2 erronée", tags=[])
    restored = pages.restore_revision(
        session, actor=actors["admin"], page_id=page.id, number=1, base_revision=2
    )
    assert (restored.revision, restored.content, restored.tags) == (3, "v1", ["accès"])
    latest = pages.list_revisions(session, actor=agent, page_id=page.id)["revisions"][0]
    assert latest["comment"] == "Restauration de la révision 1" and latest["author"]["name"] == "Admin"
    with pytest.raises(Conflict):
        pages.restore_revision(session, actor=agent, page_id=page.id, number=2, base_revision=2)


def test_second_editor_gets_conflict_with_merge_and_nothing_is_overwritten(session, actors):
    agent, admin = actors["agent"], actors["admin"]
    base = "Accès\nIP: 10.0.0.1\nLogin: admin\nContact: M. Martin"
    page = pages.create_page(
        session, actor=agent, title="Accès routeur", content=base, customer_id=CUSTOMER_A
    )
    # Both open revision 1; the agent saves first.
    pages.update_page(
        session, actor=agent, page_id=page.id, base_revision=1, content=base.replace("10.0.0.1", "10.0.0.254")
    )
    with pytest.raises(Conflict) as caught:
        pages.update_page(
            session,
            actor=admin,
            page_id=page.id,
            base_revision=1,
            content=base.replace("M. Martin", "Mme Durand"),
        )
    details = caught.value.details
    assert details["current_revision"] == 2 and details["merge"]["conflicts"] == 0
    assert details["merge"]["text"] == "Accès\nIP: 10.0.0.254\nLogin: admin\nContact: Mme Durand"
    assert page.content == base.replace("10.0.0.1", "10.0.0.254")  # the first save stands
    pages.update_page(
        session, actor=admin, page_id=page.id, base_revision=2, content=details["merge"]["text"]
    )
    assert page.revision == 3 and "10.0.0.254" in page.content and "Mme Durand" in page.content


def test_overlapping_edits_are_marked_as_conflicts_and_markers_cannot_be_saved(session, actors):
    agent, sales = actors["agent"], actors["sales"]
    page = pages.create_page(
        session, actor=agent, title="Horaires", content="Ouvert 9h-18h", customer_id=CUSTOMER_A
    )
    pages.update_page(session, actor=agent, page_id=page.id, base_revision=1, content="Ouvert 8h-17h")
    with pytest.raises(Conflict) as caught:
        pages.update_page(session, actor=sales, page_id=page.id, base_revision=1, content="Ouvert 9h-19h")
    merge = caught.value.details["merge"]
    assert merge["conflicts"] == 1
    assert merge["chunks"] == [
        {
            "kind": "conflict",
            "base": ["Ouvert 9h-18h"],
            "mine": ["Ouvert 9h-19h"],
            "theirs": ["Ouvert 8h-17h"],
        }
    ]
    with pytest.raises(InvalidInput, match="marques de conflit"):
        pages.update_page(session, actor=sales, page_id=page.id, base_revision=2, content=merge["text"])
    assert page.content == "Ouvert 8h-17h"


def test_events_created_and_updated_are_in_the_outbox(session, actors):
    agent = actors["agent"]
    page = pages.create_page(
        session, actor=agent, title="Contacts", content="Tél. 01 02", customer_id=CUSTOMER_A
    )
    pages.update_page(
        session, actor=agent, page_id=page.id, base_revision=1, content="Tél. 01 03", visible_to_customer=True
    )
    created, updated = _events(session, page.id)
    assert created["type"] == "wiki.page_created" and updated["type"] == "wiki.page_updated"
    assert created["data"]["customer_id"] == CUSTOMER_A and created["data"]["revision"] == 1
    assert created["actor"] == {
        "kind": "user",
        "id": agent["id"],
        "role": "agent",
        "name": "Thomas Technicien",
    }
    assert updated["data"]["changes"] == {
        "visible_to_customer": {"old": False, "new": True},
        "content": {"changed": True},
    }
    assert "content" not in created["data"]  # events may leave the system: metadata only


def test_tree_parent_must_be_in_the_same_wiki_and_not_a_loop(session, actors):
    agent = actors["agent"]
    root = pages.create_page(session, actor=agent, title="Site de Lyon", customer_id=CUSTOMER_A)
    child = pages.create_page(
        session, actor=agent, title="Baie de brassage", customer_id=CUSTOMER_A, parent_id=root.id
    )
    with pytest.raises(InvalidInput):
        pages.create_page(session, actor=agent, title="Ailleurs", parent_id=root.id)
    with pytest.raises(InvalidInput):
        pages.update_page(session, actor=agent, page_id=root.id, base_revision=1, parent_id=child.id)
    tree = pages.list_tree(session, actor=agent, customer_id=CUSTOMER_A)
    assert tree["pages"][0]["title"] == "Site de Lyon"
    assert [node["title"] for node in tree["pages"][0]["children"]] == ["Baie de brassage"]


def test_titles_are_unique_within_a_wiki_and_validated(session, actors):
    agent = actors["agent"]
    pages.create_page(session, actor=agent, title="Accès", customer_id=CUSTOMER_A)
    with pytest.raises(InvalidInput, match="déjà ce titre"):
        pages.create_page(session, actor=agent, title="accès", customer_id=CUSTOMER_A)
    pages.create_page(session, actor=agent, title="Accès")  # same title among the general pages is fine
    for bad in ({"title": "  "}, {"title": "x" * 201}, {"title": "ok", "customer_id": "pas-un-uuid"}):
        with pytest.raises(InvalidInput):
            pages.create_page(session, actor=agent, **bad)
    with pytest.raises(InvalidInput):
        pages.create_page(session, actor=agent, title="Générale visible", visible_to_customer=True)


def test_links_between_pages_and_to_tickets(session, actors):
    agent = actors["agent"]
    target = pages.create_page(session, actor=agent, title="Accès VPN", customer_id=CUSTOMER_A)
    page = pages.create_page(
        session,
        actor=agent,
        title="Index",
        customer_id=CUSTOMER_A,
        content="Voir [[accès vpn]], [[Manquante]] et #4521.",
    )
    view = pages.page_view(session, actor=agent, page=page)
    assert f'href="/wiki/pages/{target.id}"' in view["html"]
    assert "wiki-missing" in view["html"] and 'href="/wiki/tickets/4521"' in view["html"]
    cited = pages.pages_citing_ticket(session, actor=agent, ticket_number=4521)["items"]
    assert [item["id"] for item in cited] == [page.id]
    assert pages.pages_citing_ticket(session, actor=actors["client_a"], ticket_number=4521)["items"] == []
