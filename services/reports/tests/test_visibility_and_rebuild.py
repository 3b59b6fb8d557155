"""Who sees which figures, CSV export, and a rebuild from a replay giving exactly the incremental figures."""

from __future__ import annotations

import random

import pytest
from comptoir_common.errors import NotFound, PermissionDenied
from comptoir_reports import directory, export, projection, rebuild, reports, rollups
from comptoir_reports.models import RebuildRun, ReportAgentDay, ReportDay, ReportDurationMonth


@pytest.fixture
def projected(session, directory_loaded):
    for event in directory_loaded.events:
        projection.apply_event(session, event)
    return directory_loaded


def actor_of(who):
    return {"id": who["id"], "role": who["role"], "customer_id": who.get("customer_id"), "name": who["name"]}


def summary(session, ks, who, **filters):
    result = reports.get_report(
        session, actor=actor_of(who), report="summary", filters={**ks.period, **filters}
    )
    return result["rows"][0]


def test_agent_sees_every_customer(session, projected):
    assert summary(session, projected, projected.g1)["created"] == 5


def test_sales_rep_sees_only_their_customers(session, projected):
    ks = projected
    assert summary(session, ks, ks.sales_alpha)["created"] == 2
    assert summary(session, ks, ks.sales_beta)["created"] == 3
    # Asking for another rep's customer gives nothing of it.
    assert summary(session, ks, ks.sales_alpha, customer_id=ks.beta)["created"] == 0
    top = reports.get_report(
        session, actor=actor_of(ks.sales_alpha), report="top_customers", filters=ks.period
    )
    assert [row["customer"] for row in top["rows"]] == ["Alpha SARL"]
    options = reports.filter_options(session, actor=actor_of(ks.sales_alpha))
    assert [option["label"] for option in options["customers"]] == ["Alpha SARL"]


def test_the_page_asking_for_a_customer_search_gives_staff_no_customer_list(session, projected):
    ks = projected
    for who in (ks.admin, ks.g1, ks.sales_alpha):
        options = reports.filter_options(session, actor=actor_of(who), customer_search=True)
        assert options["customer_search"] is True and options["customers"] == []
        assert options["priorities"]
    # Clients may not search the directory: they keep the list of their own company.
    directory.set_client_summary(session, actor=actor_of(ks.admin), customer_id=ks.alpha, enabled=True)
    options = reports.filter_options(session, actor=actor_of(ks.c1), customer_search=True)
    assert options["customer_search"] is False
    assert [option["label"] for option in options["customers"]] == ["Alpha SARL"]
    # Without the flag (any other caller) staff keep the list.
    listed = reports.filter_options(session, actor=actor_of(ks.admin))
    assert listed["customer_search"] is False and "Alpha SARL" in [o["label"] for o in listed["customers"]]


def test_sales_rep_without_customers_sees_zero(session, projected):
    stranger = {"id": "00000000-0000-4000-8000-000000000999", "role": "sales", "name": "X"}
    result = reports.get_report(session, actor=stranger, report="summary", filters=projected.period)
    assert result["rows"][0]["created"] == 0


def test_client_sees_no_figures_by_default(session, projected):
    with pytest.raises(PermissionDenied, match="pas disponibles"):
        summary(session, projected, projected.c1)
    with pytest.raises(PermissionDenied):
        reports.list_reports(session, actor=actor_of(projected.c1))


def test_client_sees_own_company_summary_once_an_admin_enables_it(session, projected):
    ks = projected
    with pytest.raises(PermissionDenied):
        directory.set_client_summary(session, actor=actor_of(ks.g1), customer_id=ks.alpha, enabled=True)
    directory.set_client_summary(session, actor=actor_of(ks.admin), customer_id=ks.alpha, enabled=True)
    assert summary(session, ks, ks.c1)["created"] == 2
    assert summary(session, ks, ks.c1, customer_id=ks.beta)["created"] == 0
    # Per-agent and cross-customer reports stay closed to clients; Beta's client still sees nothing.
    with pytest.raises(PermissionDenied):
        reports.get_report(session, actor=actor_of(ks.c1), report="agents", filters=ks.period)
    with pytest.raises(PermissionDenied):
        reports.get_report(session, actor=actor_of(ks.c1), report="top_customers", filters=ks.period)
    with pytest.raises(PermissionDenied):
        summary(session, ks, ks.c2)
    keys = {item["key"] for item in reports.list_reports(session, actor=actor_of(ks.c1))}
    assert "summary" in keys and "agents" not in keys
    directory.set_client_summary(session, actor=actor_of(ks.admin), customer_id=ks.alpha, enabled=False)
    with pytest.raises(PermissionDenied):
        summary(session, ks, ks.c1)


def test_enabling_summary_of_unknown_customer_is_not_found(session, projected):
    with pytest.raises(NotFound):
        directory.set_client_summary(
            session,
            actor=actor_of(projected.admin),
            customer_id="00000000-0000-4000-8000-0000000000ff",
            enabled=True,
        )


def test_csv_export_has_bom_and_french_decimals_with_semicolons(session, projected):
    built = reports.get_report(
        session, actor=actor_of(projected.admin), report="resolution_per_customer", filters=projected.period
    )
    semicolon = export.to_csv(built, "semicolon")
    assert semicolon["filename"] == "comptoir-resolution_per_customer-2026-11-23-2026-11-30.csv"
    lines = semicolon["content"].split("\r\n")
    assert lines[0] == "\ufeffClient;Demandes clôturées;Résolution moyenne (h);Résolution moyenne (h ouvrées)"
    assert "Alpha SARL;2;15,00;7,75" in lines
    comma = export.to_csv(built, ",")["content"].split("\r\n")
    assert "Alpha SARL,2,15.00,7.75" in comma


def test_csv_export_refuses_unknown_separator(session, projected):
    from comptoir_common.errors import InvalidInput

    built = reports.get_report(
        session, actor=actor_of(projected.admin), report="summary", filters=projected.period
    )
    with pytest.raises(InvalidInput):
        export.to_csv(built, "|")


def every_report(session, ks):
    admin = actor_of(ks.admin)
    return {
        (spec.key, granularity): reports.get_report(
            session, actor=admin, report=spec.key, filters={**ks.period, "granularity": granularity}
        )
        for spec in reports.CATALOGUE
        for granularity in ("day", "week")
    }


def rollup_rows(session):
    session.flush()
    return {
        model: rollups.table_rows(session, model)
        for model in (ReportDay, ReportAgentDay, ReportDurationMonth)
    }


def test_reports_from_rollups_equal_reports_from_facts(session, projected, monkeypatch):
    """Without customer, sales-rep or agent restriction the reports sum the daily rollups; summing each fact's
    contribution instead (the path of restricted reports) gives the same figures, with every filter."""
    ks = projected
    admin = actor_of(ks.admin)
    cases = [
        {},
        {"type": "billing"},
        {"priority": "urgent"},
        {"agent_id": ks.g2["id"]},
        {"granularity": "week"},
    ]

    def all_reports():
        return [
            reports.get_report(session, actor=admin, report=spec.key, filters={**ks.period, **filters})
            for filters in cases
            for spec in reports.CATALOGUE
        ]

    from_rollups = all_reports()
    monkeypatch.setattr(reports, "_from_rollups", lambda *args, **kwargs: False)
    assert all_reports() == from_rollups


def test_rebuild_from_replay_gives_exactly_the_incremental_figures(session, directory_loaded):
    ks = directory_loaded
    # Incremental path: live delivery, out of order and with redeliveries.
    live = list(ks.events)
    random.Random(3).shuffle(live)
    for event in live + live[:7]:
        projection.apply_event(session, event)
    incremental = every_report(session, ks)
    incremental_rollups = rollup_rows(session)
    assert all(incremental_rollups.values())

    # The history as the tickets service replays it: in publication order, pages of 4.
    history = [event.to_envelope() for event in ks.events]

    def fetch(after_seq, limit):
        page = history[after_seq : after_seq + limit]
        return {
            "events": page,
            "last_seq": after_seq + len(page),
            "more": after_seq + len(page) < len(history),
        }

    admin = actor_of(ks.admin)
    requested = rebuild.request_rebuild(session, actor=admin)
    assert rebuild.request_rebuild(session, actor=admin)["id"] == requested["id"]
    run = rebuild.claim_run(session)
    assert run is not None and run.id == requested["id"] and rebuild.claim_run(session) is None
    rebuild.run(session, run, fetch, session.flush, page_size=4)

    assert session.get(RebuildRun, run.id).status == "done"
    assert run.events_replayed == len(history)
    assert every_report(session, ks) == incremental
    assert rollup_rows(session) == incremental_rollups
    # The rollups also equal the facts summed afresh in SQL (the other definition, used by filtered reports).
    rollups.refill(session)
    assert rollup_rows(session) == incremental_rollups
    status = rebuild.rebuild_status(session, actor=admin)
    assert status["rebuild"]["status"] == "done" and status["tickets"] == 5


def test_only_admins_rebuild(session, projected):
    with pytest.raises(PermissionDenied):
        rebuild.request_rebuild(session, actor=actor_of(projected.g1))
    with pytest.raises(PermissionDenied):
        rebuild.rebuild_status(session, actor=actor_of(projected.c1))


def test_an_older_customer_event_does_not_undo_a_newer_one(session, projected):
    from datetime import UTC, datetime, timedelta

    from comptoir_reports.models import Customer

    ks = projected
    newer = datetime.now(UTC) + timedelta(hours=2)
    older = newer - timedelta(hours=1)
    directory.upsert_customer(
        session, {"id": ks.alpha, "name": "Alpha", "sales_rep_id": ks.sales_beta["id"]}, newer
    )
    directory.upsert_customer(
        session, {"id": ks.alpha, "name": "Old", "sales_rep_id": ks.sales_alpha["id"]}, older
    )
    assert session.get(Customer, ks.alpha).sales_rep_id == ks.sales_beta["id"]
    assert summary(session, ks, ks.sales_alpha)["created"] == 0
    assert summary(session, ks, ks.sales_beta)["created"] == 5
