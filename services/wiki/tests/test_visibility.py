"""Who reads and who writes which page, for every role, on every path (read, list, search, tree, history)."""

from __future__ import annotations

import pytest
from comptoir_common.errors import NotFound, PermissionDenied
from comptoir_wiki import attachments, customers, pages

CUSTOMER_A = "00000000-0000-4000-8000-0000000000aa"  # the conftest's customers
CUSTOMER_B = "00000000-0000-4000-8000-0000000000bb"


@pytest.fixture
def wiki(session, actors):
    agent = actors["agent"]
    return {
        "general": pages.create_page(session, actor=agent, title="Procédure d'astreinte", content="Général"),
        "a_internal": pages.create_page(
            session, actor=agent, title="Accès VPN", content="Mot de passe du routeur", customer_id=CUSTOMER_A
        ),
        "a_shared": pages.create_page(
            session,
            actor=agent,
            title="Guide utilisateur",
            content="Comment transférer un appel",
            customer_id=CUSTOMER_A,
            visible_to_customer=True,
        ),
        "b_shared": pages.create_page(
            session,
            actor=agent,
            title="Guide",
            content="Garage",
            customer_id=CUSTOMER_B,
            visible_to_customer=True,
        ),
    }


EXPECTED = {
    "admin": {"general", "a_internal", "a_shared", "b_shared"},
    "agent": {"general", "a_internal", "a_shared", "b_shared"},
    "sales": {"general", "a_internal", "a_shared"},
    "other_sales": {"general", "b_shared"},
    "client_a": {"a_shared"},
    "reseller_a": {"a_shared"},
    "client_b": {"b_shared"},
}


@pytest.mark.parametrize("who", sorted(EXPECTED))
def test_each_role_reads_exactly_its_pages(session, actors, wiki, who):
    actor = actors[who]
    for key, page in wiki.items():
        if key in EXPECTED[who]:
            assert pages.get_page(session, actor=actor, page_id=page.id).id == page.id
            if who.startswith(("client", "reseller")):
                with pytest.raises(PermissionDenied):
                    pages.list_revisions(session, actor=actor, page_id=page.id)
            else:
                assert pages.list_revisions(session, actor=actor, page_id=page.id)["revisions"]
        else:
            with pytest.raises(NotFound):
                pages.get_page(session, actor=actor, page_id=page.id)
            with pytest.raises(NotFound):
                pages.list_revisions(session, actor=actor, page_id=page.id)
    found = {item["id"] for item in pages.search_pages(session, actor=actor, limit=200)["items"]}
    assert found & {page.id for page in wiki.values()} == {wiki[key].id for key in EXPECTED[who]}


def test_unknown_role_and_anonymous_see_nothing(session, actors, wiki):
    for actor in ({"id": "x", "role": "robot"}, {"id": None, "role": "admin"}, {}):
        assert pages.search_pages(session, actor=actor)["items"] == []
        with pytest.raises(NotFound):
            pages.get_page(session, actor=actor, page_id=wiki["general"].id)


def test_client_without_customer_sees_nothing(session, actors, wiki):
    actor = dict(actors["client_a"], customer_id=None)
    assert pages.search_pages(session, actor=actor)["items"] == []


@pytest.mark.parametrize(
    "who, customer, allowed",
    [
        ("admin", None, True),
        ("agent", CUSTOMER_A, True),
        ("sales", CUSTOMER_A, True),
        ("sales", CUSTOMER_B, False),
        ("sales", None, False),
        ("client_a", CUSTOMER_A, False),
        ("reseller_a", CUSTOMER_A, False),
    ],
)
def test_who_may_create_pages(session, actors, who, customer, allowed):
    if allowed:
        page = pages.create_page(session, actor=actors[who], title="Nouvelle", customer_id=customer)
        assert page.revision == 1
    else:
        with pytest.raises(PermissionDenied):
            pages.create_page(session, actor=actors[who], title="Nouvelle", customer_id=customer)


def test_customer_cannot_edit_a_page_it_can_read(session, actors, wiki):
    page = wiki["a_shared"]
    with pytest.raises(PermissionDenied):
        pages.update_page(
            session, actor=actors["client_a"], page_id=page.id, base_revision=1, content="piraté"
        )
    assert (
        pages.get_page(session, actor=actors["admin"], page_id=page.id).content
        == "Comment transférer un appel"
    )


def test_sales_rep_gains_and_loses_customer_with_crm_events(session, actors, wiki):
    from datetime import UTC, datetime, timedelta

    other = actors["other_sales"]
    with pytest.raises(NotFound):
        pages.get_page(session, actor=other, page_id=wiki["a_internal"].id)
    later = datetime.now(UTC) + timedelta(minutes=1)
    customers.apply_customer_upserted(
        session, {"id": CUSTOMER_A, "name": "Boulangerie Martin", "sales_rep_id": other["id"]}, later
    )
    session.flush()
    assert pages.get_page(session, actor=other, page_id=wiki["a_internal"].id)
    with pytest.raises(NotFound):
        pages.get_page(session, actor=actors["sales"], page_id=wiki["a_internal"].id)
    # An older event arriving late does not undo the newer one.
    customers.apply_customer_upserted(
        session,
        {"id": CUSTOMER_A, "name": "Ancien nom", "sales_rep_id": actors["sales"]["id"]},
        later - timedelta(hours=1),
    )
    session.flush()
    assert pages.get_page(session, actor=other, page_id=wiki["a_internal"].id)


def test_tree_and_customer_list_follow_visibility(session, actors, wiki):
    tree = pages.list_tree(session, actor=actors["client_a"], customer_id=CUSTOMER_A)
    assert [node["title"] for node in tree["pages"]] == ["Guide utilisateur"]
    assert tree["can_create"] is False
    with pytest.raises(NotFound):
        pages.list_tree(session, actor=actors["client_a"], customer_id=CUSTOMER_B)
    with pytest.raises(NotFound):
        pages.list_tree(session, actor=actors["client_a"], customer_id=None)
    with pytest.raises(NotFound):
        pages.list_tree(session, actor=actors["sales"], customer_id=CUSTOMER_B)
    listed = customers.list_customers(session, actor=actors["client_a"])
    assert [(c["id"], c["page_count"]) for c in listed] == [(CUSTOMER_A, 1)]
    assert {c["id"] for c in customers.list_customers(session, actor=actors["sales"])} == {CUSTOMER_A}
    assert {CUSTOMER_A, CUSTOMER_B} <= {
        c["id"] for c in customers.list_customers(session, actor=actors["agent"])
    }


def test_hidden_parent_is_not_leaked_to_customer(session, actors, wiki):
    child = pages.create_page(
        session,
        actor=actors["agent"],
        title="Annexe",
        customer_id=CUSTOMER_A,
        parent_id=wiki["a_internal"].id,
        visible_to_customer=True,
    )
    view = pages.page_view(session, actor=actors["client_a"], page=child)
    assert view["ancestors"] == []
    staff_view = pages.page_view(session, actor=actors["agent"], page=child)
    assert [a["title"] for a in staff_view["ancestors"]] == ["Accès VPN"]
    tree = pages.list_tree(session, actor=actors["client_a"], customer_id=CUSTOMER_A)
    assert {node["title"] for node in tree["pages"]} == {"Guide utilisateur", "Annexe"}


def test_attachment_of_hidden_page_is_not_found(session, actors, wiki, tmp_path):
    from comptoir_common.blobs import DirectoryBlobStore

    blobs = DirectoryBlobStore(tmp_path)
    key = blobs.put_bytes(b"%PDF-1.4 contrat").key
    attachment = attachments.add_attachment(
        session, actor=actors["agent"], blobs=blobs, page_id=wiki["a_internal"].id, blob_key=key,
        filename="contrat.pdf", max_size=10_000,
    )  # fmt: skip
    assert (
        attachments.get_attachment(session, actor=actors["sales"], attachment_id=attachment.id)["blob_key"]
        == key
    )
    for who in ("client_a", "client_b", "other_sales"):
        with pytest.raises(NotFound):
            attachments.get_attachment(session, actor=actors[who], attachment_id=attachment.id)


def test_customer_never_reads_what_the_page_said_before_it_was_shared(session, actors, wiki):
    agent = actors["agent"]
    page = pages.create_page(
        session, actor=agent, title="Fiche", content="Code alarme 4321", customer_id=CUSTOMER_A
    )
    pages.update_page(
        session,
        actor=agent,
        page_id=page.id,
        base_revision=1,
        content="Voir le technicien",
        visible_to_customer=True,
    )
    client = actors["client_a"]
    assert pages.get_page(session, actor=client, page_id=page.id).content == "Voir le technicien"
    for attempt in (
        lambda: pages.list_revisions(session, actor=client, page_id=page.id),
        lambda: pages.get_revision(session, actor=client, page_id=page.id, number=1),
        lambda: pages.diff_revisions(session, actor=client, page_id=page.id, from_number=1, to_number=2),
    ):
        with pytest.raises(PermissionDenied):
            attempt()
