"""Search over titles and content: French full-text on PostgreSQL, LIKE on SQLite, filtered and visibility-aware."""

from __future__ import annotations

import pytest
from comptoir_common.db import make_engine, make_session_factory
from comptoir_common.migrations import upgrade
from comptoir_dev.registry import service
from comptoir_wiki import pages

CUSTOMER_A = "00000000-0000-4000-8000-0000000000aa"
CUSTOMER_B = "00000000-0000-4000-8000-0000000000bb"


@pytest.fixture
def corpus(session, actors):
    agent = actors["agent"]
    return {
        "printer_a": pages.create_page(
            session, actor=agent, title="Parc", customer_id=CUSTOMER_A,
            content="Les imprimantes du deuxième étage sont reliées au serveur.", visible_to_customer=True,
        ),
        "printer_b": pages.create_page(
            session, actor=agent, title="Matériel", customer_id=CUSTOMER_B, content="Une imprimante laser au garage."
        ),
        "phone_a": pages.create_page(
            session, actor=agent, title="Téléphonie", customer_id=CUSTOMER_A, content="Standard et postes.", tags=["VoIP"]
        ),
    }  # fmt: skip


def _ids(result) -> set[str]:
    return {item["id"] for item in result["items"]}


def test_french_full_text_finds_other_word_forms(session, actors, corpus):
    found = pages.search_pages(session, actor=actors["agent"], query="imprimante reliée")
    assert _ids(found) == {corpus["printer_a"].id}
    found = pages.search_pages(session, actor=actors["agent"], query="imprimantes")
    assert _ids(found) == {corpus["printer_a"].id, corpus["printer_b"].id}
    assert "imprimantes" in found["items"][0]["excerpt"] or "imprimante" in found["items"][0]["excerpt"]


def test_search_in_titles_and_filtered_by_customer_and_tag(session, actors, corpus):
    agent = actors["agent"]
    assert _ids(pages.search_pages(session, actor=agent, query="téléphonie")) == {corpus["phone_a"].id}
    assert _ids(pages.search_pages(session, actor=agent, query="imprimante", customer_id=CUSTOMER_B)) == {
        corpus["printer_b"].id
    }
    assert _ids(pages.search_pages(session, actor=agent, tag="voip")) == {corpus["phone_a"].id}


def test_search_respects_visibility(session, actors, corpus):
    assert _ids(pages.search_pages(session, actor=actors["client_a"], query="imprimante")) == {
        corpus["printer_a"].id
    }
    assert _ids(pages.search_pages(session, actor=actors["client_a"], query="standard")) == set()
    assert _ids(pages.search_pages(session, actor=actors["sales"], query="imprimante")) == {
        corpus["printer_a"].id
    }


def test_search_survives_odd_input(session, actors, corpus):
    for query in ("'", "a & | !", "%_\\", "(((", "imprimante OR", '"serveur'):
        pages.search_pages(session, actor=actors["agent"], query=query)


def test_sqlite_fallback_matches_every_word(tmp_path, actors):
    url = f"sqlite:///{tmp_path / 'wiki.db'}"
    upgrade(service("wiki").migrations_dir, url)
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as lite:
            agent = actors["agent"]
            page = pages.create_page(
                lite, actor=agent, title="Parc", content="Imprimante du 2e étage, 100% laser"
            )
            pages.create_page(lite, actor=agent, title="Autre", content="imprimante jet d'encre")
            lite.flush()
            assert _ids(pages.search_pages(lite, actor=agent, query="IMPRIMANTE étage")) == {page.id}
            assert _ids(pages.search_pages(lite, actor=agent, query="100%")) == {page.id}
            assert _ids(pages.search_pages(lite, actor=agent, query="parc")) == {page.id}
    finally:
        engine.dispose()
