"""The ticket list, dashboard, ticket page and creation through the gateway, on a generated data set.

Makes its own databases and vhost, generates the tickets with COPY (``bench/tickets_data.py``), starts every process,
signs in as an agent and as a sales rep managing 500 customers, then prints p50/p95 per case:

- page 1 of the list for every sort (both directions) and every single filter, for both viewers;
- the dashboard counts; a ticket page with 200 messages (API and HTML);
- creation at concurrency 8 (throughput and latency).

Usage: ``.venv/bin/python bench/tickets_bench.py [--tickets 1000000] [--requests 40]``. Run by hand, never in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _system import running_system  # noqa: E402
from create_tickets import create_tickets, percentile  # noqa: E402
from tickets_data import generate  # noqa: E402

SORTS = [
    "updated_at",
    "created_at",
    "number",
    "title",
    "customer",
    "status",
    "assignees",
    "updated_by",
    "priority",
]


def filters(rep_customer_id: str) -> list[tuple[str, dict]]:
    return [
        ("status=open", {"status": "open"}),
        ("category=new", {"category": "new"}),
        ("priority=urgent", {"priority": "urgent"}),
        ("type=billing", {"type": "billing"}),
        ("customer_id", {"customer_id": rep_customer_id}),
        ("assignee=me", {"assignee": "me"}),
        ("view=unassigned", {"view": "unassigned"}),
        ("view=unidentified", {"view": "unidentified"}),
        ("breached", {"breached": "true"}),
        ("q=routeur", {"q": "routeur"}),
    ]


def measure(http: httpx.Client, path: str, params: dict, headers: dict, requests: int) -> tuple[float, float]:
    durations = []
    for i in range(requests + 3):
        started = time.perf_counter()
        response = http.get(path, params=params, headers=headers)
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"{path} {params}: {response.status_code} {response.text[:200]}")
        if i >= 3:  # warm-up
            durations.append(elapsed)
    return percentile(durations, 0.5) * 1000, percentile(durations, 0.95) * 1000


def report(label: str, p50: float, p95: float, target: float) -> bool:
    ok = p95 <= target
    print(f"  {label:<44} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   {'ok' if ok else 'OVER ' + str(target)}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=40, help="measured requests per case")
    parser.add_argument("--create", type=int, default=2000, help="tickets created at concurrency 8")
    args = parser.parse_args()

    with running_system("list", start=False) as system:
        agent = system.create_user("agent@bench.example", "agent", name="Agent Bench")
        rep = system.create_user("commercial@bench.example", "sales", name="Commercial Bench")
        print(f"generating {args.tickets:,} tickets …", flush=True)
        data = generate(
            system.database_urls["tickets"], tickets=args.tickets, sales_rep_id=rep["id"], agent=agent
        )
        system.start()
        ok = True
        with httpx.Client(base_url=system.base_url, timeout=60) as http:
            viewers = {
                "agent": system.login(http, agent["email"], agent["password"]),
                "sales rep (500 customers)": system.login(http, rep["email"], rep["password"]),
            }
            for viewer, headers in viewers.items():
                print(f"list page 1 (50 rows) — {viewer}")
                for sort in SORTS:
                    for direction in ("-", ""):
                        p50, p95 = measure(
                            http, "/api/v1/tickets", {"sort": direction + sort}, headers, args.requests
                        )
                        ok &= report(f"sort={direction}{sort}", p50, p95, 50)
                for label, params in filters(data["rep_customer_id"]):
                    p50, p95 = measure(http, "/api/v1/tickets", params, headers, args.requests)
                    ok &= report(label, p50, p95, 50)
                p50, p95 = measure(http, "/api/v1/dashboard", {}, headers, args.requests)
                ok &= report("dashboard counts", p50, p95, 50)
            print("ticket page with 200 messages — agent")
            p50, p95 = measure(
                http, f"/api/v1/tickets/{data['big_ticket_id']}", {}, viewers["agent"], args.requests
            )
            ok &= report("GET /api/v1/tickets/{id}", p50, p95, 100)
            cookie_client = httpx.Client(base_url=system.base_url, timeout=60)
            cookie_client.cookies.set("comptoir_session", viewers["agent"]["Authorization"][7:])
            p50, p95 = measure(cookie_client, f"/tickets/{data['big_ticket_id']}", {}, {}, args.requests)
            ok &= report("HTML page /tickets/{id}", p50, p95, 100)
            cookie_client.close()
        print("creation at concurrency 8 — agent")
        asyncio.run(create_tickets(system.base_url, viewers["agent"], 100, 8))
        latencies, elapsed = asyncio.run(create_tickets(system.base_url, viewers["agent"], args.create, 8))
        rate = args.create / elapsed
        p95 = percentile(latencies, 0.95) * 1000
        print(
            f"  {args.create} tickets: {rate:.0f} tickets/s, p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
            f"p95 {p95:.1f} ms   {'ok' if rate >= 300 and p95 <= 100 else 'UNDER TARGET'}"
        )
        ok &= rate >= 300 and p95 <= 100
        print(f"machine load (1 min): {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        print("ALL TARGETS MET" if ok else "SOME TARGETS MISSED")


if __name__ == "__main__":
    main()
