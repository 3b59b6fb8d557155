"""Import of a Simplydesk export through ``comptoir import simplydesk`` against the running system: dry run, import,
idempotence, newer export, original numbers and dates, no mail, reports with original dates, admins only."""

from __future__ import annotations

import html
import io
import json
import re
import time
import uuid
from datetime import datetime

import pika
from comptoir_common import event_catalogue
from comptoir_common.db import make_engine
from comptoir_common.events import exchange_name
from comptoir_dev import simplydesk_import
from comptoir_testing.simplydesk_export import (
    MESSAGE_HEADERS,
    TICKET_HEADERS,
    ticket_row,
    write_csv,
    write_xlsx,
)
from sqlalchemy import text

from tests.e2e.ticket_helpers import Person, customer_upserted, wait_until


def _run(system, admin, tmp_path, tickets, messages=None, dry_run=False, attachments=None):
    out = io.StringIO()
    report = simplydesk_import.run(
        tickets_file=tickets,
        messages_file=messages,
        attachments_dir=attachments,
        dry_run=dry_run,
        url=system.base_url,
        email=admin.email,
        password=admin.password,
        batch_size=2,
        out=out,
        progress_stream=io.StringIO(),
    )
    return report, out.getvalue()


def _tickets_db(system, query: str, **params):
    engine = make_engine(system.database_urls["tickets"], pool_size=1)
    try:
        with engine.connect() as connection:
            return connection.execute(text(query), params).all()
    finally:
        engine.dispose()


def test_import_dry_run_then_real_then_idempotent(system, tmp_path):
    tag = uuid.uuid4().hex[:6]
    customer_name = f"Boulangerie Dupont {tag}"
    base = 700_000 + int(tag, 16) % 100_000 * 10
    with system.client() as http:
        admin = Person(system, http, "admin")
        agent = Person(system, http, "agent", name=f"Hugo Bernard {tag}")
        customer_id = customer_upserted(system.amqp_uri, customer_name)
        # A customer of crm_sync with an account number and a contact: matched by code, and the contact's address.
        crm = http.post(
            "/api/v1/customers",
            json={
                "name": f"Garage Martin {tag}",
                "account_number": f"CLI-{tag}",
                "contacts": [{"name": "Paul Martin", "emails": [f"paul.{tag}@garage.example"]}],
            },
            headers=admin.headers,
        )
        assert crm.status_code == 201, crm.text
        crm_id = crm.json()["id"]
        for known in (customer_id, crm_id):
            wait_until(
                lambda known=known: _tickets_db(system, "SELECT 1 FROM customers WHERE id = :id", id=known),
                what="customer read model",
            )
        requester = f"elise.{tag}@boulangerie.example"
        rows = [
            ticket_row(base + 1, datetime(2025, 3, 14, 9, 5), closed=datetime(2025, 3, 14, 16, 40),
                       status="Résolu", customer=customer_name.upper(), email=requester,
                       technician=f"Hugo Bernard {tag}", description="Plus de tonalité.\nDepuis 9 h"),
            ticket_row(base + 2, datetime(2025, 6, 2, 10, 0), customer="Client inconnu SARL",
                       email=f"inconnu.{tag}@ailleurs.example", status="En attente", priority="Haute",
                       technician="Personne Inconnue", description="Facture en double"),
            ticket_row(base + 2, datetime(2025, 6, 2, 10, 0)),
            ticket_row(base + 4, datetime(2025, 7, 1, 9, 0), customer="Nom différent", email=f"paul.{tag}@garage.example",
                       description="Pont élévateur") + [f"CLI-{tag}"],
        ]  # fmt: skip
        messages = [
            [str(base + 1), "14/03/2025 10:15", f"Hugo Bernard {tag}", agent.email, "Nous regardons.", "Non"],
            [str(base + 1), "14/03/2025 11:00", "Hugo", "", "Carte changée", "Oui"],
        ]
        tickets_file = write_csv(
            tmp_path / "tickets.csv", TICKET_HEADERS + ["Code client"], rows, encoding="cp1252", delimiter=";"
        )
        messages_file = write_xlsx(tmp_path / "messages.xlsx", MESSAGE_HEADERS, messages)

        # Only admins may import: the service refuses others on the API.
        refused = http.post(
            "/api/v1/imports/simplydesk/batch",
            json={"tickets": [{"number": base + 9}], "dry_run": True},
            headers=agent.headers,
        )
        assert refused.status_code == 403, refused.text

        connection = pika.BlockingConnection(pika.URLParameters(system.amqp_uri))
        channel = connection.channel()
        channel.exchange_declare(exchange_name("tickets"), exchange_type="topic", durable=True)
        queue = channel.queue_declare(queue="", exclusive=True).method.queue
        for key in ("ticket.batch_imported", "ticket.created", "ticket.message_added"):
            channel.queue_bind(queue, exchange_name("tickets"), routing_key=key)
        try:
            report, summary = _run(system, admin, tmp_path, tickets_file, messages_file, dry_run=True)
            assert report.counts["created"] == 3 and report.counts["rejected"] == 1
            assert report.matches["customer"] == {"name": 1, "unmatched": 1, "external_key": 1}
            assert report.matches["requester"] == {"contact": 1, "unmatched": 2}
            assert "Client inconnu SARL" in report.unmatched_customers
            assert "Personne Inconnue" in report.unmatched_assignees
            assert report.crm_available is True
            assert "Simulation" in summary
            assert not _tickets_db(system, "SELECT 1 FROM tickets WHERE number > :n", n=base)

            report, summary = _run(system, admin, tmp_path, tickets_file, messages_file)
            assert report.counts["created"] == 3 and report.counts["messages"] == 5, summary
            assert (tmp_path / "tickets.rejets.csv").read_text(encoding="utf-8-sig").count(
                "ticket en double"
            ) == 1

            imported = {
                number: {"id": ticket_id}
                for number, ticket_id in _tickets_db(
                    system, "SELECT number, id FROM tickets WHERE number > :n", n=base
                )
            }
            first = http.get(f"/api/v1/tickets/{imported[base + 1]['id']}", headers=admin.headers).json()
            assert first["source"] == "import" and first["customer_id"] == customer_id
            assert first["created_at"].startswith("2025-03-14T08:05:00")
            assert first["closed_at"].startswith("2025-03-14T15:40:00")
            assert first["status_category"] == "closed"
            assert [a["name"] for a in first["assignees"]] == [f"Hugo Bernard {tag}"]
            assert [m["body"] for m in first["messages"]] == ["Plus de tonalité.\nDepuis 9 h", "Nous regardons.",
                                                               "Carte changée"]  # fmt: skip
            assert first["messages"][1]["author"]["role"] == "agent"
            second = http.get(f"/api/v1/tickets/{imported[base + 2]['id']}", headers=admin.headers).json()
            assert (
                second["customer_id"] is None
                and second["requester"]["email"] == f"inconnu.{tag}@ailleurs.example"
            )
            assert second["status_category"] == "pending" and second["priority"] == "high"
            fourth = http.get(f"/api/v1/tickets/{imported[base + 4]['id']}", headers=admin.headers).json()
            assert (
                fourth["customer_id"] == crm_id
                and fourth["requester"]["email"] == f"paul.{tag}@garage.example"
            )

            # Second run: nothing changes. Newer export: only what is new.
            report, _ = _run(system, admin, tmp_path, tickets_file, messages_file)
            assert report.counts["created"] == 0 and report.counts["updated"] == 0
            assert report.counts["unchanged"] == 3
            rows.append(ticket_row(base + 3, datetime(2025, 9, 1, 8, 0), description="Nouveau") + [""])
            messages.append([str(base + 2), "03/06/2025 09:00", "Support", "", "Doublon annulé.", "Non"])
            rows[1][4] = "Fermé"
            newer = write_csv(
                tmp_path / "tickets2.csv",
                TICKET_HEADERS + ["Code client"],
                rows,
                encoding="utf-8-sig",
                delimiter=",",
            )
            newer_messages = write_csv(
                tmp_path / "messages2.csv", MESSAGE_HEADERS, messages, encoding="utf-8", delimiter=","
            )
            report, _ = _run(system, admin, tmp_path, newer, newer_messages)
            assert (report.counts["created"], report.counts["updated"], report.counts["unchanged"]) == (
                1,
                1,
                2,
            )
            assert report.counts["messages"] == 2
            assert len(_tickets_db(system, "SELECT 1 FROM tickets WHERE number > :n", n=base)) == 4

            # New tickets continue after the highest imported number.
            live = http.post(
                "/api/v1/tickets",
                json={"title": "Après l'import", "message": "Bonjour"},
                headers=agent.headers,
            )
            assert live.status_code == 201, live.text
            assert live.json()["number"] > base + 4

            # Events: one ticket.batch_imported per batch (valid against the catalogue), never ticket.created for
            # imports.
            envelopes = []
            for _ in range(200):
                method, _, body = channel.basic_get(queue, auto_ack=True)
                if method is None:
                    if any(
                        e["data"].get("ticket", {}).get("number") == live.json()["number"] for e in envelopes
                    ):
                        break
                    time.sleep(0.1)
                    continue
                envelopes.append(json.loads(body))

            def numbers(envelope: dict) -> list[int]:
                snapshots = [t["ticket"] for t in envelope["data"].get("tickets") or []]
                snapshots += [envelope["data"]["ticket"]] if envelope["data"].get("ticket") else []
                return [n for n in (t.get("number", 0) for t in snapshots) if base < n <= base + 4]

            ours = [e for e in envelopes if numbers(e)]
            assert {e["type"] for e in ours} == {"ticket.batch_imported"}
            # One event per batch, an entry per ticket: 3 created, then 1 updated and 1 created.
            entries = [t for e in ours for t in e["data"]["tickets"]]
            assert sorted(t["created"] for t in entries) == [False, True, True, True, True]
            assert len(ours) < len(entries)
            for envelope in ours:
                event_catalogue.validate(envelope)
        finally:
            connection.close()

    # No mail for imported tickets (the live ticket's acknowledgement shows that the notifier is running).
    system.smtp.wait_for(lambda m: "Après l'import" in (m["Subject"] or ""))
    recipients = {m["To"] for m in system.smtp.messages}
    assert requester not in recipients and f"inconnu.{tag}@ailleurs.example" not in recipients

    # Reports count the imported tickets with their original dates.
    reports = make_engine(system.database_urls["reports"], pool_size=1)
    try:

        def facts():
            with reports.connect() as db:
                return db.execute(
                    text(
                        "SELECT number, created_day, closed_day, source FROM ticket_facts"
                        " WHERE number BETWEEN :n AND :m"
                    ),
                    {"n": base + 1, "m": base + 4},
                ).all()

        wait_until(lambda: len(facts()) == 4, what="reports of imported tickets")
        by_number = {row[0]: row for row in facts()}
        assert str(by_number[base + 1][1]) == "2025-03-14" and str(by_number[base + 1][2]) == "2025-03-14"
        assert str(by_number[base + 2][1]) == "2025-06-02" and by_number[base + 2][2] is not None
        assert by_number[base + 3][3] == "import"
    finally:
        reports.dispose()


def _web_login(system, http, email: str, password: str) -> str:
    page = http.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    signed_in = http.post(
        "/login", data={"email": email, "password": password, "csrf_token": csrf}, follow_redirects=False
    )
    assert signed_in.status_code == 303, signed_in.text
    return csrf


def test_admin_page_simulates_then_imports_with_progress(system, tmp_path):
    tag = uuid.uuid4().hex[:6]
    base = 600_000 + int(tag, 16) % 10_000 * 10
    rows = [ticket_row(base + i, datetime(2024, 5, 2, 9, i), description=f"Demande {i}") for i in range(1, 4)]
    rows.append(["", "sans numéro", "02/05/2024", "", "", "", "", "", "", "", "", ""])
    export = write_xlsx(tmp_path / "export.xlsx", TICKET_HEADERS, rows)
    with system.client() as http:
        agent = Person(system, http, "agent")
        csrf = _web_login(system, http, agent.email, agent.password)
        assert http.get("/admin/import").status_code == 403
    with system.client() as http:
        admin = Person(system, http, "admin")
        csrf = _web_login(system, http, admin.email, admin.password)
        page = http.get("/admin/import")
        assert page.status_code == 200 and "Import des tickets de Simplydesk" in page.text
        # Checked by content: an image renamed .csv is refused.
        refused = http.post(
            "/admin/import",
            data={"csrf_token": csrf, "mode": "dry_run"},
            files={"tickets_file": ("tickets.csv", b"\x89PNG\r\n\x1a\n\x00\x00binary", "text/csv")},
        )
        assert refused.status_code == 422 and "ni un fichier CSV" in refused.text

        with export.open("rb") as stream:
            started = http.post(
                "/admin/import",
                data={"csrf_token": csrf, "mode": "dry_run"},
                files={"tickets_file": ("export.xlsx", stream, "application/octet-stream")},
                follow_redirects=False,
            )
        assert started.status_code == 303, started.text
        job_url = started.headers["location"]

        def finished(url):
            progress = http.get(url + "/progress").json()
            return progress if progress["status"] in ("done", "failed") else None

        wait_until(lambda: finished(job_url), what="simulation finished")
        progress = finished(job_url)
        assert progress["status"] == "done" and progress["done"] == 3 and progress["total"] == 4
        page = html.unescape(http.get(job_url).text)
        assert "Simulation (rien n'a été écrit)" in page and "tickets créés : 3" in page
        assert "numéro de ticket invalide" in page
        assert not _tickets_db(
            system, "SELECT 1 FROM tickets WHERE number > :n AND number < :m", n=base, m=base + 9
        )

        forged = http.post(job_url + "/run", data={"csrf_token": "x"}, follow_redirects=False)
        assert forged.status_code == 400 and "expiré" in forged.text
        run = http.post(job_url + "/run", data={"csrf_token": csrf}, follow_redirects=False)
        assert run.status_code == 303
        real_url = run.headers["location"]
        wait_until(lambda: finished(real_url), what="import finished")
        assert "Import terminé" in html.unescape(http.get(real_url).text)
        rejected = http.get(real_url + "/rejets.csv")
        assert rejected.status_code == 200 and "numéro de ticket invalide" in rejected.text
    numbers = _tickets_db(
        system, "SELECT number FROM tickets WHERE number > :n AND number < :m", n=base, m=base + 9
    )
    assert sorted(n for (n,) in numbers) == [base + 1, base + 2, base + 3]


class _InterruptAfter(io.StringIO):
    """A progress stream that interrupts the command (as Ctrl+C would) on its ``limit``-th line."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit

    def write(self, text: str) -> int:
        self.limit -= 1
        if self.limit <= 0:
            raise KeyboardInterrupt
        return super().write(text)

    def isatty(self) -> bool:
        return False


def test_interrupted_import_resumes_where_it_stopped(system, tmp_path):
    tag = uuid.uuid4().hex[:6]
    base = 500_000 + int(tag, 16) % 10_000 * 10
    with system.client() as http:
        admin = Person(system, http, "admin")
    rows = [ticket_row(base + i, datetime(2024, 2, 1, 9, i), description=f"Demande {i}") for i in range(1, 7)]
    tickets_file = write_csv(tmp_path / "reprise.csv", TICKET_HEADERS, rows, encoding="utf-8", delimiter=";")
    common = dict(tickets_file=tickets_file, url=system.base_url, email=admin.email, password=admin.password,
                  batch_size=2)  # fmt: skip
    try:
        simplydesk_import.run(**common, out=io.StringIO(), progress_stream=_InterruptAfter(2))
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the import was not interrupted")
    state = json.loads((tmp_path / "reprise.csv.import-state.json").read_text(encoding="utf-8"))
    assert state["batches_done"] == 2
    ours = "SELECT number FROM tickets WHERE number BETWEEN :n + 1 AND :n + 6 ORDER BY number"
    done = _tickets_db(system, ours, n=base)
    assert [n for (n,) in done] == [base + 1, base + 2, base + 3, base + 4]

    out = io.StringIO()
    report = simplydesk_import.run(**common, out=out, progress_stream=io.StringIO())
    assert "Reprise après 2 lot(s) déjà importé(s)." in out.getvalue()
    # The batches done were not sent again (they would count as unchanged): the totals are those of one whole run.
    assert (report.counts["created"], report.counts["unchanged"]) == (6, 0)
    assert not (tmp_path / "reprise.csv.import-state.json").exists()
    assert len(_tickets_db(system, ours, n=base)) == 6
