"""The FileMaker sync over python-fmrest and real HTTPS against the fake Data API, into real PostgreSQL."""

from __future__ import annotations

import uuid

from comptoir_common.db import session_scope
from comptoir_crm_sync import directory, sync
from comptoir_crm_sync.models import Contact, Customer, OutboxMessage, SyncRejection, SyncState
from sqlalchemy import func, select

ADMIN = {"id": str(uuid.uuid4()), "role": "admin", "name": "Ada"}


def _client(fake, key, name, **fields):
    contacts = fields.pop("contacts", None)
    return fake.create(
        "Clients",
        {"ID_Client": key, "RaisonSociale": name, **fields},
        portals={"Contacts": contacts} if contacts is not None else None,
    )


def _directory(factory) -> dict[str, dict]:
    with factory() as session:
        customers = session.scalars(select(Customer).where(Customer.source == "filemaker")).all()
        return {
            c.external_key: {
                "name": c.name,
                "active": c.active,
                "emails": sorted(e for contact in c.contacts for e in contact.emails),
            }
            for c in customers
        }


def _source(fake) -> dict[str, dict]:
    out = {}
    for record in fake.layouts["Clients"].records.values():
        emails = []
        for row in record.portal_data.get("Contacts", []):
            emails += [row[k].lower() for k in ("Contacts::Email", "Contacts::Email2") if row.get(k)]
        out[record.field_data["ID_Client"]] = {
            "name": record.field_data["RaisonSociale"],
            "active": True,
            "emails": sorted(emails),
        }
    return out


def _run(factory, settings, full=None, owner=None):
    return sync.FileMakerSync(factory, settings, owner=owner).run(full=full)


def test_first_pass_maps_records_contacts_sales_rep_and_extra_fields(
    fake_filemaker, sync_settings, sync_factory
):
    with session_scope(sync_factory) as session:
        directory.apply_user(
            session,
            {
                "id": "rep-1",
                "email": "sophie@a6telecom.fr",
                "name": "Sophie Vente",
                "role": "sales",
                "active": True,
            },
        )
    _client(fake_filemaker, "R1", "Revendeur Rhône", Ville="Lyon")
    _client(
        fake_filemaker,
        "C1",
        "Boulangerie Dupont",
        NumeroCompte="411DUP",
        Adresse1="3 rue Mercière",
        CodePostal="69002",
        Ville="Lyon",
        Telephone="04 78 00 00 01",
        Commercial="Sophie Vente",
        ID_Revendeur="R1",
        Secteur="Alimentaire",
        Email="accueil@dupont-pain.fr",
        contacts=[
            {
                "ID_Contact": "7",
                "Prenom": "Jean",
                "Nom": "Dupont",
                "Email": "Jean@Dupont-Pain.fr",
                "Fonction": "Gérant",
            }
        ],
    )
    report = _run(sync_factory, sync_settings)
    assert report.ok and report.kind == "full", report.error
    assert report.counts() == {"created": 2, "updated": 0, "unchanged": 0, "deactivated": 0, "rejected": 0}
    with sync_factory() as session:
        customer = session.scalar(select(Customer).where(Customer.external_key == "C1"))
        parent = session.scalar(select(Customer).where(Customer.external_key == "R1"))
        assert customer.parent_customer_id == parent.id
        assert customer.sales_rep_id == "rep-1"
        assert customer.addresses == [{"street": "3 rue Mercière", "postal_code": "69002", "city": "Lyon"}]
        assert customer.extra == {"Secteur": "Alimentaire"}
        assert customer.email_domains == ["dupont-pain.fr"]
        found = directory.find_by_email(session, "jean@dupont-pain.fr")
        assert found["contact"]["name"] == "Jean Dupont" and found["contact"]["role"] == "Gérant"
        assert directory.find_by_email(session, "ACCUEIL@dupont-pain.fr")["customer"]["id"] == customer.id

    events_before = _count(sync_factory, OutboxMessage)
    again = _run(sync_factory, sync_settings)
    assert again.ok and again.kind == "incremental"
    assert again.created == again.updated == 0 and again.unchanged == 2
    assert _count(sync_factory, OutboxMessage) == events_before


def _count(factory, model) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_incremental_pass_applies_changes_and_skips_the_rest(fake_filemaker, sync_settings, sync_factory):
    ids = [_client(fake_filemaker, f"K{i}", f"Client {i}") for i in range(25)]
    fake_filemaker.clock_control.advance(600)
    _client(fake_filemaker, "K50", "Dernier modifié")
    assert _run(sync_factory, sync_settings).created == 26
    fake_filemaker.clock_control.advance(600)
    fake_filemaker.update("Clients", ids[3], {"RaisonSociale": "Client trois"})
    _client(fake_filemaker, "K99", "Nouveau client")
    report = _run(sync_factory, sync_settings)
    assert report.kind == "incremental" and report.ok
    # Only what changed since the watermark minus the overlap was read (K50 is in the overlap, and skipped).
    assert (report.created, report.updated, report.unchanged) == (1, 1, 1)
    assert _directory(sync_factory) == _source(fake_filemaker)


def test_deletions_are_caught_by_the_full_pass_and_deactivate(fake_filemaker, sync_settings, sync_factory):
    ids = [_client(fake_filemaker, f"D{i}", f"Client {i}") for i in range(12)]
    _run(sync_factory, sync_settings)
    fake_filemaker.delete("Clients", ids[0])
    fake_filemaker.delete("Clients", ids[11])
    assert _run(sync_factory, sync_settings).deactivated == 0  # incremental: no deletion feed
    report = _run(sync_factory, sync_settings, full=True)
    assert report.ok and report.deactivated == 2
    state = _directory(sync_factory)
    assert not state["D0"]["active"] and not state["D11"]["active"] and state["D5"]["active"]
    assert _count(sync_factory, Customer) == 12  # never deleted
    # Back in FileMaker: reactivated.
    _client(fake_filemaker, "D0", "Client 0")
    _run(sync_factory, sync_settings)
    assert _directory(sync_factory)["D0"]["active"]


def test_bad_records_are_reported_and_the_others_applied(fake_filemaker, sync_settings, sync_factory):
    _client(fake_filemaker, "B1", "Bon client")
    _client(fake_filemaker, "", "Sans clé")
    _client(fake_filemaker, "B2", "")
    _client(fake_filemaker, "B3", "Adresse douteuse", contacts=[{"Nom": "X", "Email": "pas-une-adresse"}])
    report = _run(sync_factory, sync_settings)
    assert report.ok and report.created == 2 and report.rejected == 2
    with sync_factory() as session:
        status = sync.sync_status(session, actor=ADMIN, settings=sync_settings)
    reasons = " | ".join(r["reason"] for r in status["rejections"])
    assert "clé" in reasons and "raison sociale" in reasons and "pas-une-adresse" in reasons
    assert status["filemaker"]["counts"]["rejected"] == 2 and status["filemaker"]["last_run_ok"]


def test_transient_faults_are_retried(fake_filemaker, sync_settings, sync_factory):
    for i in range(30):
        _client(fake_filemaker, f"F{i:02}", f"Client {i}")
    fake_filemaker.inject("502", count=1, after=1)
    fake_filemaker.inject("garbage", count=1, after=1)
    fake_filemaker.inject("expire", count=1, after=2)  # the token dies in the middle of the pass
    report = _run(sync_factory, sync_settings)
    assert report.ok, report.error
    assert report.created == 30
    assert fake_filemaker.logins >= 2
    assert _directory(sync_factory) == _source(fake_filemaker)


def test_interrupted_pass_resumes_without_duplicates(fake_filemaker, sync_settings, sync_factory):
    for i in range(25):
        _client(fake_filemaker, f"I{i:02}", f"Client {i}")
        fake_filemaker.clock_control.advance(1)
    _run(sync_factory, sync_settings)
    fake_filemaker.clock_control.advance(600)
    for i in range(25):
        fake_filemaker.update("Clients", i + 1, {"RaisonSociale": f"Client {i} modifié"})
        fake_filemaker.clock_control.advance(1)
    # FileMaker goes down after the first page of the incremental pass and stays down past the retries.
    fake_filemaker.inject("502", count=100, after=1)
    failed = _run(sync_factory, sync_settings)
    assert not failed.ok and "502" in failed.error or "Bad Gateway" in failed.error
    assert failed.updated == 10  # the committed page
    with sync_factory() as session:
        state = session.get(SyncState, "filemaker")
        assert state.last_error and state.lease_owner is None
    fake_filemaker.clear_faults()
    resumed = _run(sync_factory, sync_settings)
    assert resumed.ok and resumed.updated == 15 and resumed.created == 0
    assert _directory(sync_factory) == _source(fake_filemaker)
    assert _count(sync_factory, Customer) == 25


def test_many_records_within_one_second_are_all_read(fake_filemaker, sync_settings, sync_factory):
    _client(fake_filemaker, "S0", "Premier")
    _run(sync_factory, sync_settings)
    fake_filemaker.clock_control.advance(600)
    for i in range(1, 36):  # 35 records, same timestamp, pages of 10
        _client(fake_filemaker, f"S{i}", f"Client {i}")
    report = _run(sync_factory, sync_settings)
    assert report.ok and report.created == 35
    assert _directory(sync_factory) == _source(fake_filemaker)


def test_one_pass_at_a_time_across_instances(fake_filemaker, sync_settings, sync_factory):
    _client(fake_filemaker, "L1", "Client")
    sync.ensure_state(sync_factory, "filemaker")
    with session_scope(sync_factory) as session:
        assert sync.take_lease(session, "filemaker", "other-instance", 60)
    assert _run(sync_factory, sync_settings).skipped
    assert _count(sync_factory, Customer) == 0
    with session_scope(sync_factory) as session:
        sync.release_lease(session, "filemaker", "other-instance")
    assert _run(sync_factory, sync_settings).created == 1


def test_configuration_errors_fail_fast_with_a_french_message(fake_filemaker, sync_settings, sync_factory):
    settings = sync_settings.model_copy(update={"filemaker_password": "faux"})
    report = _run(sync_factory, settings)
    assert not report.ok and "212" in report.error and "refusé" in report.error
    layout = sync_settings.filemaker.model_copy(update={"layout": "Inexistant"})
    report = _run(sync_factory, sync_settings.model_copy(update={"filemaker": layout}))
    assert not report.ok and "105" in report.error


def test_status_is_for_admins(sync_factory, sync_settings):
    import pytest
    from comptoir_common.errors import PermissionDenied

    with sync_factory() as session:
        for role in ("agent", "sales", "client", "reseller"):
            with pytest.raises(PermissionDenied):
                sync.sync_status(session, actor={"id": "x", "role": role}, settings=sync_settings)
            with pytest.raises(PermissionDenied):
                sync.request_sync(session, actor={"id": "x", "role": role}, full=True)
        assert sync.request_sync(session, actor=ADMIN, full=True) == {"requested": "full"}
        session.commit()
        assert session.get(SyncState, "filemaker").full_requested
    assert _count(sync_factory, SyncRejection) == 0
    assert _count(sync_factory, Contact) == 0


def test_a_page_applies_end_customers_before_their_reseller_and_resolves_sales_reps_in_one_go(
    fake_filemaker, sync_settings, sync_factory
):
    with session_scope(sync_factory) as session:
        for i, (name, email) in enumerate([("Sophie Vente", "sophie@a6.fr"), ("Marc Vente", "marc@a6.fr")]):
            directory.apply_user(
                session, {"id": f"rep-{i}", "email": email, "name": name, "role": "sales", "active": True}
            )
    # Sorted by key, the end-customers (A…) come before their reseller (Z1) in the same page.
    _client(fake_filemaker, "A1", "Client un", ID_Revendeur="Z1", Commercial="sophie vente")
    _client(fake_filemaker, "A2", "Client deux", ID_Revendeur="Z1", Commercial="MARC@a6.fr")
    _client(fake_filemaker, "A3", "Client trois", ID_Revendeur="Z1", Commercial="Inconnu")
    _client(
        fake_filemaker, "Z1", "Revendeur", contacts=[{"ID_Contact": "1", "Nom": "Zoé", "Email": "z@rev.fr"}]
    )
    report = _run(sync_factory, sync_settings)
    assert report.ok and report.pages == 1 and report.created == 4, report.error
    with sync_factory() as session:
        by_key = {c.external_key: c for c in session.scalars(select(Customer))}
        assert {by_key[k].parent_customer_id for k in ("A1", "A2", "A3")} == {by_key["Z1"].id}
        assert (by_key["A1"].sales_rep_id, by_key["A2"].sales_rep_id, by_key["A3"].sales_rep_id) == (
            "rep-0",
            "rep-1",
            None,
        )
        assert by_key["A3"].sales_rep_ref == "Inconnu"
        events = session.scalars(select(OutboxMessage).order_by(OutboxMessage.seq)).all()
    # One event per customer (already attached: no second event), then the contact's, in order.
    upserted = [e.payload["data"]["id"] for e in events if e.event_type == "customer.upserted"]
    assert sorted(upserted) == sorted(c.id for c in by_key.values())
    assert [e.event_type for e in events].count("contact.upserted") == 1
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    assert all(
        e.payload["data"]["parent_customer_id"] == by_key["Z1"].id
        for e in events
        if e.payload["data"].get("id") in (by_key["A1"].id,)
    )
