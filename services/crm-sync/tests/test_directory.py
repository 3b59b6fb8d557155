"""The directory's domain functions over real PostgreSQL: upserts, events, manual edits, lookups and rights."""

from __future__ import annotations

import uuid

import pytest
from comptoir_common.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from comptoir_crm_sync import directory
from comptoir_crm_sync.directory import ContactData, CustomerData
from comptoir_crm_sync.models import OutboxMessage
from sqlalchemy import select

ADMIN = {
    "id": str(uuid.uuid4()),
    "role": "admin",
    "name": "Ada Admin",
    "customer_id": None,
    "email": "a@x.fr",
}
AGENT = {"id": str(uuid.uuid4()), "role": "agent", "name": "Tom Tech", "customer_id": None, "email": "t@x.fr"}
CLIENT = {"id": str(uuid.uuid4()), "role": "client", "name": "Cli", "customer_id": None, "email": "c@x.fr"}


def _events(session, since=0):
    rows = session.scalars(select(OutboxMessage).where(OutboxMessage.seq > since).order_by(OutboxMessage.seq))
    return [(row.event_type, row.payload["data"]) for row in rows]


def _last_seq(session) -> int:
    rows = session.scalars(select(OutboxMessage.seq).order_by(OutboxMessage.seq.desc()).limit(1)).all()
    return rows[0] if rows else 0


def _sales(session, name="Sophie Vente", email=None):
    user_id = str(uuid.uuid4())
    directory.apply_user(
        session,
        {
            "id": user_id,
            "email": email or f"{user_id[:8]}@a6telecom.fr",
            "name": name,
            "role": "sales",
            "active": True,
        },
    )
    return {"id": user_id, "role": "sales", "name": name, "customer_id": None, "email": email}


def _data(name="Boulangerie Dupont", **kw):
    return CustomerData(
        name=name,
        account_number=kw.pop("account_number", "411DUP"),
        phone="04 78 00 00 01",
        addresses=[{"street": "3 rue Mercière", "postal_code": "69002", "city": "Lyon"}],
        contacts=kw.pop(
            "contacts",
            [
                ContactData(
                    name="Jean Dupont",
                    emails=["Jean@Dupont-Pain.FR", "compta@dupont-pain.fr"],
                    external_key="c1",
                )
            ],
        ),
        **kw,
    )


def test_upsert_creates_then_is_silent_when_nothing_changes(session):
    key = uuid.uuid4().hex
    start = _last_seq(session)
    outcome, customer = directory.upsert_from_source(
        session, source="filemaker", external_key=key, data=_data(extra={"Secteur": "Alimentaire"})
    )
    assert outcome == "created"
    events = _events(session, start)
    types = [t for t, _ in events]
    assert types == ["customer.upserted", "contact.upserted"]
    upserted = events[0][1]
    assert upserted["email_domains"] == ["dupont-pain.fr"]
    assert upserted["extra"] == {"Secteur": "Alimentaire"}
    assert set(upserted) == {
        "id",
        "name",
        "source",
        "external_key",
        "account_number",
        "addresses",
        "phone",
        "email_domains",
        "sales_rep_id",
        "parent_customer_id",
        "active",
        "extra",
    }
    assert events[1][1]["emails"] == ["jean@dupont-pain.fr", "compta@dupont-pain.fr"]

    mark = _last_seq(session)
    outcome, again = directory.upsert_from_source(
        session, source="filemaker", external_key=key, data=_data(extra={"Secteur": "Alimentaire"})
    )
    assert outcome == "unchanged" and again.id == customer.id
    assert _events(session, mark) == []


def test_contact_changes_and_removal_publish_events(session):
    key = uuid.uuid4().hex
    directory.upsert_from_source(session, source="filemaker", external_key=key, data=_data())
    mark = _last_seq(session)
    outcome, customer = directory.upsert_from_source(
        session,
        source="filemaker",
        external_key=key,
        data=_data(
            contacts=[ContactData(name="Marie Dupont", emails=["marie@dupont-pain.fr"], external_key="c2")]
        ),
    )
    assert outcome == "updated"
    types = [t for t, _ in _events(session, mark)]
    assert sorted(types) == ["contact.removed", "contact.upserted"]
    assert directory.find_by_email(session, "JEAN@dupont-pain.fr") is None
    found = directory.find_by_email(session, " Marie@Dupont-Pain.fr ")
    assert found["customer"]["id"] == customer.id and found["contact"]["name"] == "Marie Dupont"
    # Many addresses in one look-up (an import's requesters): only the owned ones come back, normalised.
    many = directory.find_by_emails(
        session, ["MARIE@dupont-pain.fr", "jean@dupont-pain.fr", "", "x@y.example"]
    )
    assert list(many) == ["marie@dupont-pain.fr"] and many["marie@dupont-pain.fr"] == found
    with pytest.raises(InvalidInput):
        directory.find_by_emails(session, ["a@b.example"] * (directory.MAX_EMAILS_PER_LOOKUP + 1))


def test_mod_id_unchanged_skips_the_row(session):
    key = uuid.uuid4().hex
    directory.upsert_from_source(
        session, source="filemaker", external_key=key, data=_data(), record_id="7", mod_id="3"
    )
    # Same modId: not even looked at, even if the data passed differs.
    outcome, customer = directory.upsert_from_source(
        session, source="filemaker", external_key=key, data=_data(name="Autre nom"), record_id="7", mod_id="3"
    )
    assert outcome == "unchanged" and customer.name == "Boulangerie Dupont"
    outcome, customer = directory.upsert_from_source(
        session, source="filemaker", external_key=key, data=_data(name="Autre nom"), record_id="7", mod_id="4"
    )
    assert outcome == "updated" and customer.name == "Autre nom"


def test_bad_data_is_refused_in_french(session):
    with pytest.raises(InvalidInput, match="obligatoire"):
        directory.upsert_from_source(session, source="filemaker", external_key="k", data=_data(name="  "))
    with pytest.raises(InvalidInput, match="invalide"):
        directory.upsert_from_source(
            session,
            source="filemaker",
            external_key="k2",
            data=_data(contacts=[ContactData(name="X", emails=["pas-une-adresse"])]),
        )
    with pytest.raises(InvalidInput, match="Clé"):
        directory.upsert_from_source(session, source="filemaker", external_key="", data=_data())


def test_sales_rep_resolved_by_name_or_email_even_when_the_user_comes_later(session):
    rep = _sales(session, name="Sophie Vente", email="sophie@a6telecom.fr")
    _, by_name = directory.upsert_from_source(
        session, source="filemaker", external_key=uuid.uuid4().hex, data=_data(sales_rep_ref="sophie vente")
    )
    _, by_email = directory.upsert_from_source(
        session,
        source="filemaker",
        external_key=uuid.uuid4().hex,
        data=_data(sales_rep_ref="Sophie@A6telecom.fr"),
    )
    assert by_name.sales_rep_id == rep["id"] and by_email.sales_rep_id == rep["id"]
    _, waiting = directory.upsert_from_source(
        session,
        source="filemaker",
        external_key=uuid.uuid4().hex,
        data=_data(sales_rep_ref="paul@a6telecom.fr"),
    )
    assert waiting.sales_rep_id is None
    paul = str(uuid.uuid4())
    directory.apply_user(
        session, {"id": paul, "email": "paul@a6telecom.fr", "name": "Paul", "role": "sales", "active": True}
    )
    session.refresh(waiting)
    assert waiting.sales_rep_id == paul


def test_parent_reseller_resolved_whichever_arrives_first(session):
    parent_key, child_key = uuid.uuid4().hex, uuid.uuid4().hex
    _, child = directory.upsert_from_source(
        session,
        source="filemaker",
        external_key=child_key,
        data=_data(name="Client final", parent_external_key=parent_key),
    )
    assert child.parent_customer_id is None
    _, parent = directory.upsert_from_source(
        session, source="filemaker", external_key=parent_key, data=_data(name="Revendeur")
    )
    session.refresh(child)
    assert child.parent_customer_id == parent.id


def test_manual_customers_by_admins_only(session):
    with pytest.raises(PermissionDenied):
        directory.create_customer(session, actor=AGENT, payload={"name": "X"})
    with pytest.raises(InvalidInput):
        directory.create_customer(session, actor=ADMIN, payload={"name": ""})
    customer = directory.create_customer(
        session,
        actor=ADMIN,
        payload={
            "name": "Garage Martin",
            "contacts": [{"name": "M. Martin", "emails": "martin@garage-martin.fr"}],
        },
    )
    assert customer.source == "manual" and customer.email_domains == ["garage-martin.fr"]
    updated = directory.update_customer(
        session,
        actor=ADMIN,
        customer_id=customer.id,
        payload={"name": "Garage Martin & Fils", "email_domains": "garage-martin.fr"},
    )
    assert updated.name == "Garage Martin & Fils"
    _, synced = directory.upsert_from_source(
        session, source="filemaker", external_key=uuid.uuid4().hex, data=_data()
    )
    with pytest.raises(Conflict):
        directory.update_customer(session, actor=ADMIN, customer_id=synced.id, payload={"name": "Y"})
    with pytest.raises(NotFound):
        directory.update_customer(session, actor=ADMIN, customer_id=str(uuid.uuid4()), payload={"name": "Y"})


def test_deactivate_and_assign_sales_rep(session):
    rep = _sales(session)
    customer = directory.create_customer(session, actor=ADMIN, payload={"name": "Cabinet Durand"})
    with pytest.raises(PermissionDenied):
        directory.assign_sales_rep(session, actor=rep, customer_id=customer.id, sales_rep_id=rep["id"])
    with pytest.raises(InvalidInput):
        directory.assign_sales_rep(session, actor=ADMIN, customer_id=customer.id, sales_rep_id=AGENT["id"])
    directory.assign_sales_rep(session, actor=ADMIN, customer_id=customer.id, sales_rep_id=rep["id"])
    mark = _last_seq(session)
    directory.set_active(session, actor=ADMIN, customer_id=customer.id, active=False)
    assert [t for t, _ in _events(session, mark)] == ["customer.upserted", "customer.deactivated"]
    assert _events(session, mark)[1][1] == {"id": customer.id}
    directory.set_active(session, actor=ADMIN, customer_id=customer.id, active=False)
    assert len(_events(session, mark)) == 2


def test_reads_per_role(session):
    rep = _sales(session)
    other_rep = _sales(session, name="Autre Commercial")
    mine = directory.create_customer(
        session, actor=ADMIN, payload={"name": "Zèbre Télécom", "sales_rep_id": rep["id"]}
    )
    theirs = directory.create_customer(
        session, actor=ADMIN, payload={"name": "Zèbre Immobilier", "sales_rep_id": other_rep["id"]}
    )

    def names(actor):
        return {c["name"] for c in directory.list_customers(session, actor=actor, search="zebre")["items"]}

    assert names(ADMIN) == names(AGENT) == {"Zèbre Télécom", "Zèbre Immobilier"}
    assert names(rep) == {"Zèbre Télécom"}
    with pytest.raises(PermissionDenied):
        directory.list_customers(session, actor=CLIENT)
    assert directory.show_customer(session, actor=rep, customer_id=mine.id)["name"] == "Zèbre Télécom"
    with pytest.raises(NotFound):
        directory.show_customer(session, actor=rep, customer_id=theirs.id)
    with pytest.raises(NotFound):
        directory.show_customer(session, actor=CLIENT, customer_id=mine.id)
    page = directory.list_customers(
        session, actor=ADMIN, search="zebre", source="manual", active=True, limit=1
    )
    assert page["total"] == 2 and len(page["items"]) == 1


def test_search_by_account_number_and_contact_email(session):
    _, customer = directory.upsert_from_source(
        session,
        source="quadra",
        external_key=uuid.uuid4().hex[:8],
        data=_data(name="Pharmacie Centrale", account_number="411PHA77"),
    )
    assert [c["id"] for c in directory.list_customers(session, actor=ADMIN, search="411PHA77")["items"]] == [
        customer.id
    ]
    assert customer.id in [
        c["id"] for c in directory.list_customers(session, actor=ADMIN, search="jean@dupont")["items"]
    ]


def _picked(session, actor, query, **kw):
    return [c["name"] for c in directory.search_customers(session, actor=actor, query=query, **kw)]


def test_picker_suggestions_follow_the_directory_rights(session):
    tag = uuid.uuid4().hex[:6]
    rep = _sales(session)
    for name, owner in (("Mine", rep["id"]), ("Autre", None)):
        directory.create_customer(
            session, actor=ADMIN, payload={"name": f"Quokka {tag} {name}", "sales_rep_id": owner}
        )
    assert _picked(session, ADMIN, f"quokka {tag}") == [f"Quokka {tag} Autre", f"Quokka {tag} Mine"]
    assert _picked(session, AGENT, f"quokka {tag}") == [f"Quokka {tag} Autre", f"Quokka {tag} Mine"]
    assert _picked(session, rep, f"quokka {tag}") == [f"Quokka {tag} Mine"]
    assert _picked(session, rep, "") == [f"Quokka {tag} Mine"]
    reseller = CLIENT | {"role": "reseller"}
    for refused in (CLIENT, reseller):
        with pytest.raises(PermissionDenied):
            directory.search_customers(session, actor=refused, query="quokka")


def test_picker_ignores_accents_and_case_and_ranks_exact_then_prefix(session):
    tag = uuid.uuid4().hex[:6]
    names = [
        f"Les Jardins d'Élodie {tag}",
        f"Élodie {tag} Fleurs",
        f"Élodie {tag}",
        f"Boutique Mélodie{tag}",
    ]
    for index, name in enumerate(names):
        directory.create_customer(
            session,
            actor=ADMIN,
            payload={
                "name": name,
                "account_number": f"411{tag}{index}",
                "addresses": [{"city": "Villeurbanne"}],
            },
        )
    found = directory.search_customers(session, actor=ADMIN, query=f"ELODIE {tag}")
    assert [c["name"] for c in found] == [
        f"Élodie {tag}",
        f"Élodie {tag} Fleurs",
        f"Les Jardins d'Élodie {tag}",
    ]
    assert [c["exact"] for c in found] == [True, False, False]
    assert found[0]["city"] == "Villeurbanne" and found[0]["account_number"] == f"411{tag}2"
    assert _picked(session, ADMIN, f"lodie{tag}") == [f"Boutique Mélodie{tag}"]
    by_number = directory.search_customers(session, actor=ADMIN, query=f"411{tag.upper()}3")
    assert [(c["name"], c["exact"]) for c in by_number] == [(f"Boutique Mélodie{tag}", True)]
    assert len(directory.search_customers(session, actor=ADMIN, query=f"411{tag}")) == 4
    assert _picked(session, ADMIN, f"{tag}%") == [] and _picked(session, ADMIN, "_" * 3 + tag) == []
    assert len(directory.search_customers(session, actor=ADMIN, query=tag, limit=2)) == 2


def test_picker_leaves_out_inactive_customers(session):
    tag = uuid.uuid4().hex[:6]
    gone = directory.create_customer(session, actor=ADMIN, payload={"name": f"Ancien {tag}"})
    directory.set_active(session, actor=ADMIN, customer_id=gone.id, active=False)
    assert _picked(session, ADMIN, tag) == []


def test_republish_all_covers_customers_and_contacts(session):
    directory.upsert_from_source(session, source="filemaker", external_key=uuid.uuid4().hex, data=_data())
    mark = _last_seq(session)
    counts = directory.republish_all(session)
    types = [t for t, _ in _events(session, mark)]
    assert types.count("customer.upserted") == counts["customers"] >= 1
    assert types.count("contact.upserted") == counts["contacts"] >= 1
