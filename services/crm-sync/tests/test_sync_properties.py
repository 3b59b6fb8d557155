"""Property: after any sequence of FileMaker changes, syncs (some interrupted by faults) and a final full pass, the
directory equals the source — same customers, names and contact emails, nobody duplicated, deleted ones inactive."""

from __future__ import annotations

from comptoir_crm_sync import sync
from comptoir_crm_sync.models import Customer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from .conftest import empty_tables

KEYS = [f"P{i}" for i in range(8)]
NAMES = ["Alpha", "Bêta & Cie", "Gamma SARL", "Delta", "Épsilon", "Zêta"]
EMAILS = ["a@alpha.fr", "b@beta.fr", "Compta@Gamma.fr", "d@delta.fr"]

operation = st.one_of(
    st.tuples(
        st.just("upsert"),
        st.sampled_from(KEYS),
        st.sampled_from(NAMES),
        st.lists(st.sampled_from(EMAILS), max_size=2, unique=True),
    ),
    st.tuples(st.just("delete"), st.sampled_from(KEYS)),
    st.tuples(st.just("tick"), st.sampled_from([0, 0, 1, 30, 500])),
    st.tuples(st.just("sync")),
    st.tuples(st.just("interrupted_sync"), st.integers(min_value=0, max_value=4)),
)


def _source_state(fake):
    state = {}
    for record in fake.layouts["Clients"].records.values():
        emails = sorted(row["Contacts::Email"].lower() for row in record.portal_data.get("Contacts", []))
        state[record.field_data["ID_Client"]] = (record.field_data["RaisonSociale"], emails)
    return state


def _directory_state(factory, only_active=True):
    with factory() as session:
        query = select(Customer).where(Customer.source == "filemaker")
        if only_active:
            query = query.where(Customer.active.is_(True))
        return {
            c.external_key: (c.name, sorted(e for contact in c.contacts for e in contact.emails))
            for c in session.scalars(query)
        }


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=st.lists(operation, max_size=25))
def test_directory_converges_to_filemaker(operations, fake_filemaker, sync_settings, sync_database):
    from comptoir_common.db import make_session_factory
    from comptoir_testing.fake_filemaker import add_clients_layout

    empty_tables(sync_database)
    factory = make_session_factory(sync_database)
    fake_filemaker.clear_faults()
    fake_filemaker.layouts.clear()
    add_clients_layout(fake_filemaker)
    settings_ = sync_settings.model_copy(update={"sync_page_size": 3, "sync_retries": 1})
    deleted_ever = set()
    # One runner for the whole example, as the service keeps one (its FileMaker session is reused).
    runner = sync.FileMakerSync(factory, settings_)
    for op in operations:
        if op[0] == "upsert":
            _, key, name, emails = op
            portal = {
                "Contacts": [
                    {"ID_Contact": str(i), "Nom": e.split("@")[0], "Email": e} for i, e in enumerate(emails)
                ]
            }
            record_id = fake_filemaker.find_record_id("Clients", "ID_Client", key)
            if record_id is None:
                fake_filemaker.create("Clients", {"ID_Client": key, "RaisonSociale": name}, portals=portal)
            else:
                fake_filemaker.update("Clients", record_id, {"RaisonSociale": name}, portals=portal)
        elif op[0] == "delete":
            record_id = fake_filemaker.find_record_id("Clients", "ID_Client", op[1])
            if record_id is not None:
                fake_filemaker.delete("Clients", record_id)
                deleted_ever.add(op[1])
        elif op[0] == "tick":
            fake_filemaker.clock_control.advance(op[1])
        elif op[0] == "sync":
            assert runner.run().ok
        else:
            fake_filemaker.inject("502", count=50, after=op[1])
            runner.run()
            fake_filemaker.clear_faults()

    source = _source_state(fake_filemaker)
    # Incremental passes alone bring every existing record up to date (deletions wait for the full pass).
    assert runner.run(full=False).ok
    directory = _directory_state(factory, only_active=False)
    for key, value in source.items():
        assert directory.get(key) == value
    # A full pass: the active directory is exactly the source.
    assert runner.run(full=True).ok
    runner.client.close()
    assert _directory_state(factory) == source
    with factory() as session:
        total = session.scalar(select(func.count()).select_from(Customer))
        keys = session.scalar(select(func.count(func.distinct(Customer.external_key))))
    assert total == keys  # no duplicates
    everything = _directory_state(factory, only_active=False)
    assert set(everything) <= set(source) | deleted_ever
    # Deleted from FileMaker = kept, inactive; everything else active.
    assert set(everything) - set(_directory_state(factory)) == set(everything) - set(source)
