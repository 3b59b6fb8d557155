"""Wiki benchmark (run by hand: ``.venv/bin/python bench/wiki.py [pages]``): prints numbers, asserts nothing.

Measures, on a throw-away PostgreSQL database: creating pages (with their first revision and event), French
full-text search with and without a customer filter, rendering a long page, and the three-way merge of a long page.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
import uuid

from comptoir_common.db import make_engine, make_session_factory
from comptoir_common.migrations import upgrade
from comptoir_dev.registry import service
from comptoir_testing import infra
from comptoir_wiki import merging, pages, rendering

WORDS = (
    "imprimante routeur standard téléphonique ligne SDSL fibre accès VPN mot de passe serveur poste agence "
    "installation contrat maintenance baie brassage switch borne wifi sauvegarde messagerie licence client "
    "procédure redémarrage firmware numéro transfert appel astreinte technicien intervention site Lyon Paris"
).split()


def paragraph(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def timed(fn, repeat: int) -> list[float]:
    durations = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        durations.append((time.perf_counter() - started) * 1000)
    return durations


def report(label: str, durations: list[float]) -> None:
    durations = sorted(durations)
    p95 = durations[min(len(durations) - 1, int(len(durations) * 0.95))]
    print(
        f"{label:<48} median {statistics.median(durations):8.2f} ms   p95 {p95:8.2f} ms   (n={len(durations)})"
    )


def main(page_count: int = 3000) -> None:
    rng = random.Random(8)
    server = infra.postgres_server_url()
    name = f"bench_wiki_{uuid.uuid4().hex[:8]}"
    url = infra.create_database(server, name)
    try:
        upgrade(service("wiki").migrations_dir, url)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        agent = {"id": str(uuid.uuid4()), "role": "agent", "name": "Bench", "customer_id": None}
        customers = [str(uuid.uuid4()) for _ in range(50)]
        started = time.perf_counter()
        with factory() as session:
            for index in range(page_count):
                content = "\n\n".join(paragraph(rng, 60) for _ in range(6))
                pages.create_page(
                    session,
                    actor=agent,
                    title=f"Page {index}",
                    content=content,
                    customer_id=rng.choice(customers),
                )
                if index % 200 == 199:
                    session.commit()
            session.commit()
        elapsed = time.perf_counter() - started
        print(
            f"created {page_count} pages (~2.4 kB each) in {elapsed:.1f} s: {page_count / elapsed:.0f} pages/s"
        )
        with factory() as session:
            session.execute(__import__("sqlalchemy").text("ANALYZE"))
            for query in ("imprimantes", "routeur VPN", "redémarrer firmware", "mot introuvable"):
                durations = timed(
                    lambda q=query: pages.search_pages(session, actor=agent, query=q, limit=50), 30
                )
                report(f"search {query!r} (all customers)", durations)
            customer = customers[0]
            report(
                "search 'imprimante' (one customer)",
                timed(
                    lambda: pages.search_pages(
                        session, actor=agent, query="imprimante", customer_id=customer
                    ),
                    30,
                ),
            )
        long_page = "\n\n".join(paragraph(rng, 40) + " Voir #1234 et [[Page 3]]." for _ in range(500))
        report(
            "render a 500-paragraph page (~150 kB)", timed(lambda: rendering.render_markdown(long_page), 10)
        )
        lines = [paragraph(rng, 8) for _ in range(2000)]
        mine = lines[:]
        theirs = lines[:]
        for index in range(0, 2000, 50):
            mine[index] = "mine " + mine[index]
        for index in range(25, 2000, 50):
            theirs[index] = "theirs " + theirs[index]
        base, mine_text, theirs_text = "\n".join(lines), "\n".join(mine), "\n".join(theirs)
        report(
            "merge3 of a 2000-line page (80 edits)",
            timed(lambda: merging.merge3(base, mine_text, theirs_text), 10),
        )
        engine.dispose()
    finally:
        infra.drop_database(server, name)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000)
