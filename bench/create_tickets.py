"""Ticket creation through the gateway at concurrency 8: throughput and latency percentiles.

Starts its own system (PostgreSQL databases and a RabbitMQ vhost of its own, every process), signs in once, then
creates tickets with 8 concurrent clients. Usage: ``.venv/bin/python bench/create_tickets.py [--tickets 2000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _system import running_system  # noqa: E402


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def backend_cpu(database_names: list[str]) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend serving one of ``database_names`` (from the process titles)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().decode(errors="replace")
            if title.startswith("postgres:") and any(f" {name} " in title for name in database_names):
                found[int(entry.name)] = cpu_seconds(int(entry.name))
        except OSError:
            continue
    return found


def broker_cpu() -> float:
    """CPU seconds so far of the RabbitMQ node (shared with whatever else runs on the machine)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"beam.smp" in (entry / "cmdline").read_bytes():
                    total += cpu_seconds(int(entry.name))
            except OSError:
                continue
    return total


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


async def create_tickets(
    base_url: str, headers: dict, total: int, concurrency: int
) -> tuple[list[float], float]:
    latencies: list[float] = []
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30, limits=limits) as client:

        async def worker() -> None:
            for index in counter:
                started = time.perf_counter()
                response = await client.post(
                    "/api/v1/tickets",
                    json={"title": f"Bench {index}", "message": "Ligne coupée depuis ce matin."},
                )
                latencies.append(time.perf_counter() - started)
                if response.status_code != 201:
                    raise RuntimeError(f"{response.status_code}: {response.text}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return latencies, elapsed


def start_profilers(processes: dict, directory: str) -> list[subprocess.Popen]:
    """py-spy (``pip install py-spy``) on every process, sampling without pausing it."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    py_spy = Path(sys.executable).parent / "py-spy"
    return [
        subprocess.Popen(
            [
                str(py_spy),
                "record",
                "--nonblocking",
                "--rate",
                "100",
                "--format",
                "raw",
                "--pid",
                str(process.pid),
                "--output",
                str(Path(directory) / f"{name}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, process in processes.items()
    ]


def stop_profilers(profilers: list[subprocess.Popen]) -> None:
    for profiler in profilers:
        profiler.send_signal(signal.SIGINT)
    for profiler in profilers:
        profiler.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="record each process with py-spy during the measured run (collapsed stacks in DIR/<process>.txt)",
    )
    args = parser.parse_args()
    with running_system("create") as system:
        user = system.create_user(
            "bench@client.example", "client", customer_id="00000000-0000-4000-8000-00000000b001"
        )
        with system.client() as http:
            headers = system.login(http, user["email"], user["password"])
        asyncio.run(create_tickets(system.base_url, headers, args.warmup, args.concurrency))
        profilers = start_profilers(system.processes, args.profile) if args.profile else []
        cpu_before = {name: cpu_seconds(process.pid) for name, process in system.processes.items()}
        backends_before, broker_before = backend_cpu(system.database_names), broker_cpu()
        latencies, elapsed = asyncio.run(
            create_tickets(system.base_url, headers, args.tickets, args.concurrency)
        )
        stop_profilers(profilers)
        cpu_per_ticket = {
            name: (cpu_seconds(process.pid) - cpu_before[name]) / args.tickets * 1000
            for name, process in system.processes.items()
        }
        backends_after = backend_cpu(system.database_names)
        cpu_per_ticket["postgresql (our databases)"] = (
            sum(cpu - backends_before.get(pid, 0.0) for pid, cpu in backends_after.items())
            / args.tickets
            * 1000
        )
        cpu_per_ticket["rabbitmq (whole node, shared)"] = (broker_cpu() - broker_before) / args.tickets * 1000
    print(
        f"tickets created      : {args.tickets} at concurrency {args.concurrency} (after {args.warmup} warm-up)"
    )
    print(f"throughput           : {args.tickets / elapsed:.1f} tickets/s")
    print(
        f"latency p50 / p95    : {percentile(latencies, 0.5) * 1000:.1f} ms / {percentile(latencies, 0.95) * 1000:.1f} ms"
    )
    print(
        f"latency mean / max   : {statistics.mean(latencies) * 1000:.1f} ms / {max(latencies) * 1000:.1f} ms"
    )
    print("CPU per ticket       : " + ", ".join(f"{name} {ms:.2f} ms" for name, ms in cpu_per_ticket.items()))
    ours = sum(ms for name, ms in cpu_per_ticket.items() if not name.startswith("rabbitmq"))
    print(
        f"CPU per ticket, total: {ours:.1f} ms without the broker → at most {2000 / ours:.0f} tickets/s on 2 "
        f"cores if nothing else ran"
    )
    print(f"machine load (1 min) : {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
