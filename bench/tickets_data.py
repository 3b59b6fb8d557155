"""Generate a large ticket data set in a tickets PostgreSQL database: a million tickets in minutes.

Customers and agents go in with COPY; tickets, their messages, assignees and the dashboard counters are generated
by PostgreSQL itself (``INSERT … SELECT … generate_series``), with the secondary indexes dropped during the load and
rebuilt after, which is what keeps a million rows within minutes on a small machine.

The data: 5,000 customers (the first 500 managed by ``sales_rep_id``), 2 % of tickets not identified, statuses
10 % new / 15 % open / 5 % pending / 70 % closed, one message per ticket, most tickets assigned to one of 10 agents,
20 % of the open ones past their deadline, and one ticket with 200 messages.
"""

from __future__ import annotations

import io
import time
import uuid
from datetime import UTC, datetime

import psycopg2

CUSTOMERS = 5000
REP_CUSTOMERS = 500
WORDS = (
    "ligne coupée standard téléphonique routeur fibre fax facture résiliation portabilité numéro messagerie "
    "vocale débit lent coupure box wifi mobile forfait sdsl adsl transfert appel renvoi poste accueil agence "
    "serveur sauvegarde imprimante licence compte accès mot de passe devis commande installation"
).split()


def _copy(cursor, table: str, columns: str, rows: list[tuple]) -> None:
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
    buffer.seek(0)
    cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN", buffer)


def _words(count: int) -> str:
    """SQL for ``count`` random words from WORDS."""
    array = "ARRAY[" + ",".join("'" + w + "'" for w in WORDS) + "]"
    picks = [f"({array})[1 + floor(random() * {len(WORDS)})::int]" for _ in range(count)]
    return " || ' ' || ".join(picks)


TICKETS_SQL = """
INSERT INTO tickets (id, number, title, status, status_category, type, priority, customer_id, customer_name,
    requester_id, requester_email, requester_name, assignees, assignee_names, followers, source, created_at,
    created_by_id, created_by_name, updated_at, updated_by_id, updated_by_name, first_response_at, closed_at,
    reopened_count, sla_target_minutes, sla_elapsed_minutes, sla_running_since, resolution_due_at, sla_breached,
    sla_breach_published, version)
SELECT g.id, g.n, g.title, g.status, g.status, g.type, g.priority, c.id, COALESCE(c.name, ''),
    g.requester, 'contact' || g.n || '@client.example', 'Contact ' || g.n,
    CASE WHEN a.id IS NULL THEN '[]'::json ELSE json_build_array(json_build_object('id', a.id, 'name', a.name)) END,
    COALESCE(a.name, ''), '[]'::json, CASE WHEN c.id IS NULL THEN 'email' ELSE 'web' END, g.created,
    g.requester, 'Contact ' || g.n, g.updated, g.requester, 'Contact ' || g.n,
    CASE WHEN g.status <> 'new' THEN g.updated END, CASE WHEN g.status = 'closed' THEN g.updated END,
    0, g.target, 0,
    CASE WHEN g.status IN ('new', 'open') THEN g.created END,
    CASE WHEN g.status IN ('new', 'open') THEN g.created + make_interval(mins => g.target * 2) END,
    g.status IN ('new', 'open') AND g.r_breach < 0.2, g.status IN ('new', 'open') AND g.r_breach < 0.2, 1
FROM (
    SELECT n, gen_random_uuid()::text AS id, gen_random_uuid()::text AS requester,
        initcap({title}) AS title,
        CASE WHEN r_status < 0.10 THEN 'new' WHEN r_status < 0.25 THEN 'open'
             WHEN r_status < 0.30 THEN 'pending' ELSE 'closed' END AS status,
        (ARRAY['incident','information','change','termination','billing', NULL])[1 + floor(random() * 6)::int] AS type,
        (ARRAY['urgent','high','normal','low'])[1 + p] AS priority,
        (ARRAY[240, 480, 1140, 2850])[1 + p] AS target,
        now() - make_interval(mins => floor(random() * 3 * 365 * 24 * 60)::int) AS created,
        r_status, r_breach, r_customer, r_agent
    FROM (SELECT n, random() AS r_status, random() AS r_breach, random() AS r_customer, random() AS r_agent,
                 floor(random() * 4)::int AS p
          FROM generate_series(%(first)s, %(last)s) AS n) AS draws
) AS g0
CROSS JOIN LATERAL (SELECT g0.*, LEAST(now(), g0.created + make_interval(mins => floor(random() * 28800)::int)) AS updated) AS g
LEFT JOIN bench_customers c ON g.r_customer >= 0.02 AND c.idx = floor((g.r_customer - 0.02) / 0.98 * {customers})::int
LEFT JOIN bench_agents a ON g.status <> 'new' AND g.r_agent < 0.9 AND a.idx = floor(g.r_agent / 0.9 * 10)::int
"""


def generate(database_url: str, *, tickets: int, sales_rep_id: str, agent: dict) -> dict:
    """Fill the database; return ids the benchmark needs (a big ticket, a customer of the rep)."""
    started = time.perf_counter()
    connection = psycopg2.connect(database_url.replace("postgresql+psycopg2://", "postgresql://"))
    connection.autocommit = True
    cursor = connection.cursor()
    now = datetime.now(UTC).isoformat()
    other_reps = [str(uuid.uuid4()) for _ in range(20)]
    customers = [
        (
            i,
            str(uuid.uuid4()),
            f"Client {i:05d} {WORDS[i % len(WORDS)].title()}",
            sales_rep_id if i < REP_CUSTOMERS else other_reps[i % 20],
        )
        for i in range(CUSTOMERS)
    ]
    agents = [(0, agent["id"], agent["name"])] + [(i, str(uuid.uuid4()), f"Agent {i}") for i in range(1, 10)]
    cursor.execute("CREATE UNLOGGED TABLE bench_customers (idx int PRIMARY KEY, id text, name text)")
    cursor.execute("CREATE UNLOGGED TABLE bench_agents (idx int PRIMARY KEY, id text, name text)")
    _copy(cursor, "bench_customers", "idx, id, name", [(i, cid, name) for i, cid, name, _ in customers])
    _copy(cursor, "bench_agents", "idx, id, name", agents)
    _copy(
        cursor,
        "customers",
        "id, name, sales_rep_id, parent_customer_id, active, updated_at",
        [(cid, name, rep, None, "t", now) for _, cid, name, rep in customers],
    )
    _copy(
        cursor,
        "users",
        "id, name, email, role, customer_id, active, updated_at",
        [(aid, name, f"{aid[:8]}@bench.example", "agent", None, "t", now) for _, aid, name in agents],
    )
    # Secondary indexes off during the load, rebuilt once at the end (much faster than row by row).
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('tickets', 'messages', 'ticket_assignees') "
        "AND indexname NOT LIKE 'pk_%%' AND indexname NOT LIKE 'uq_%%'"
    )
    indexes = cursor.fetchall()
    for name, _ in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    chunk = 200_000
    for first in range(1, tickets + 1, chunk):
        last = min(tickets, first + chunk - 1)
        cursor.execute(
            TICKETS_SQL.format(title=_words(5), customers=CUSTOMERS), {"first": first, "last": last}
        )
        print(f"  {last:>9,} tickets  {time.perf_counter() - started:6.1f} s", flush=True)
    cursor.execute(
        "INSERT INTO messages (id, ticket_id, author_id, author_name, author_role, author_email, body, internal, "
        f"source, created_at) SELECT gen_random_uuid()::text, id, requester_id, requester_name, 'client', NULL, "
        f"{_words(25)}, false, 'web', created_at FROM tickets"
    )
    print(f"  messages          {time.perf_counter() - started:6.1f} s", flush=True)
    cursor.execute(
        "INSERT INTO ticket_assignees (ticket_id, user_id) SELECT id, (assignees::json -> 0 ->> 'id') "
        "FROM tickets WHERE assignee_names <> ''"
    )
    cursor.execute("SELECT id FROM tickets WHERE number = 1")
    big_ticket_id = cursor.fetchone()[0]
    cursor.execute(
        "INSERT INTO messages (id, ticket_id, author_id, author_name, author_role, author_email, body, internal, "
        f"source, created_at) SELECT gen_random_uuid()::text, %s, %s, %s, 'agent', NULL, {_words(60)}, "
        "n %% 10 = 0, 'web', now() - make_interval(mins => 300 - n) FROM generate_series(1, 199) AS n",
        (big_ticket_id, agent["id"], agent["name"]),
    )
    cursor.execute("DELETE FROM ticket_counts")
    cursor.execute(
        "INSERT INTO ticket_counts (customer_id, category, count) SELECT COALESCE(customer_id, ''), "
        "status_category, count(*) FROM tickets GROUP BY 1, 2"
    )
    cursor.execute("UPDATE counters SET value = %s WHERE name = 'ticket_number'", (tickets,))
    for _name, definition in indexes:
        cursor.execute(definition)
    print(f"  indexes           {time.perf_counter() - started:6.1f} s", flush=True)
    cursor.execute("DROP TABLE bench_customers, bench_agents")
    cursor.execute("VACUUM ANALYZE")
    connection.close()
    elapsed = time.perf_counter() - started
    print(f"generated {tickets:,} tickets in {elapsed:.0f} s ({tickets / elapsed:,.0f}/s)", flush=True)
    return {"big_ticket_id": big_ticket_id, "rep_customer_id": customers[0][1], "seconds": elapsed}
