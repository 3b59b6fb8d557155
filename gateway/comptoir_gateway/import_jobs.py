"""Imports started from the admin page: the uploaded export read in a thread, batches sent to the tickets service,
progress kept for the page to poll.

A job lives in the gateway process that started it (its files in a private folder under the data directory); the
page polls that same process. A gateway restart loses the job's progress, not the imported tickets: the import is
idempotent, so starting the same files again finishes the work. For very large exports the command line
(``comptoir import simplydesk``), which resumes by itself, is the better tool.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from comptoir_common.ticket_import import ExportReader, ImportFileError, ImportReport, Mapping, read_rows
from fastapi import HTTPException

from comptoir_gateway import import_hints
from comptoir_gateway.rpc import Services

BATCH_SIZE = 200
KEEP_JOBS = 20


@dataclass
class ImportJob:
    id: str
    folder: Path
    tickets_file: Path
    messages_file: Path | None
    mapping_file: Path | None
    dry_run: bool
    actor: dict[str, Any]
    status: str = "waiting"  # waiting, running, done, failed
    total: int = 0
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    error: str | None = None
    report: ImportReport | None = None
    summary_text: str = ""
    task: asyncio.Task | None = None

    def progress(self) -> dict[str, Any]:
        elapsed = (self.finished or time.monotonic()) - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 and self.total > self.done else 0.0
        return {
            "id": self.id,
            "status": self.status,
            "dry_run": self.dry_run,
            "total": self.total,
            "done": self.done,
            "percent": round(100 * self.done / self.total, 1) if self.total else 0.0,
            "rate": round(rate, 1),
            "seconds_left": round(left),
            "elapsed": round(elapsed),
            "error": self.error,
        }


class ImportJobs:
    """The jobs of this gateway process."""

    def __init__(self, root: Path):
        self.root = root
        self.jobs: dict[str, ImportJob] = {}

    def new_folder(self) -> tuple[str, Path]:
        job_id = str(uuid.uuid4())
        folder = self.root / job_id
        folder.mkdir(parents=True, exist_ok=False)
        return job_id, folder

    def get(self, job_id: str) -> ImportJob:
        job = self.jobs.get(job_id)
        if job is None:
            raise HTTPException(404, "Import introuvable (la passerelle a peut-être redémarré).")
        return job

    def start(self, job: ImportJob, services: Services) -> ImportJob:
        self.jobs[job.id] = job
        job.task = asyncio.create_task(run_job(job, services))
        for old in sorted(self.jobs.values(), key=lambda j: j.started)[:-KEEP_JOBS]:
            if old.status in ("done", "failed"):
                shutil.rmtree(old.folder, ignore_errors=True)
                self.jobs.pop(old.id, None)
        return job

    def again(self, job: ImportJob, services: Services, dry_run: bool) -> ImportJob:
        """The same files, run again (after a dry run: for real)."""
        copy = ImportJob(
            id=str(uuid.uuid4()),
            folder=job.folder,
            tickets_file=job.tickets_file,
            messages_file=job.messages_file,
            mapping_file=job.mapping_file,
            dry_run=dry_run,
            actor=job.actor,
        )
        return self.start(copy, services)


def _count(path: Path, mapping: Mapping) -> int:
    _, rows = read_rows(path, mapping)
    return sum(1 for _, row in rows if any(str(c).strip() for c in row))


async def run_job(job: ImportJob, services: Services) -> None:
    job.status = "running"
    job.started = time.monotonic()
    report = ImportReport(dry_run=job.dry_run)
    job.report = report
    reader = None
    try:
        mapping = await asyncio.to_thread(Mapping.load, job.mapping_file)
        job.total = await asyncio.to_thread(_count, job.tickets_file, mapping)
        reader = ExportReader(job.tickets_file, job.messages_file, mapping)
        batches = reader.tickets(BATCH_SIZE)
        while True:
            batch = await asyncio.to_thread(next, batches, None)
            if batch is None:
                break
            for ticket in batch:
                for message in ticket["messages"]:
                    # Attachments need their files: only the command line (--attachments) brings them.
                    message["attachments"] = []
            hints, crm_available = await import_hints.resolve(services, job.actor, batch)
            answer = await services.call(
                "tickets", "import_tickets", actor=job.actor, batch=batch, hints=hints, dry_run=job.dry_run
            )
            report.add_batch(answer | {"crm_available": crm_available}, job.tickets_file.name)
            job.done += len(batch)
        report.add_rejected(reader.rejected)
        job.summary_text = report.text(reader)
        job.status = "done"
    except ImportFileError as exc:
        job.status, job.error = "failed", str(exc)
    except HTTPException as exc:
        detail = exc.detail if isinstance(exc.detail, str) else (exc.detail or {}).get("message", "")
        job.status, job.error = (
            "failed",
            f"{detail} Relancez l'import : ce qui est déjà importé ne sera pas refait.",
        )
    except Exception as exc:  # the page must say it stopped, whatever the cause
        job.status, job.error = "failed", f"Erreur inattendue : {exc}"
        raise
    finally:
        job.finished = time.monotonic()
        if reader is not None:
            await asyncio.to_thread(reader.close)
