"""The admin page of the Simplydesk import: upload the export, simulate, import with progress, read the report."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from comptoir_gateway.import_jobs import ImportJob, ImportJobs
from comptoir_gateway.rpc import ServicesDep
from comptoir_gateway.web.rendering import render_page
from comptoir_gateway.web.routes import error_page, require_actor, submit_form

router = APIRouter(include_in_schema=False)

MAX_EXPORT_BYTES = 500 * 1024 * 1024
MAX_MAPPING_BYTES = 64 * 1024
CHUNK = 1024 * 1024


def _jobs(request: Request) -> ImportJobs:
    jobs = getattr(request.app.state, "import_jobs", None)
    if jobs is None:
        root = Path(request.app.state.settings.data_dir) / "imports"
        jobs = ImportJobs(root)
        request.app.state.import_jobs = jobs
    return jobs


def _looks_like_export(head: bytes) -> bool:
    """A spreadsheet (XLSX: a zip) or text (CSV in UTF-8 or Windows-1252: no NUL byte)."""
    return head.startswith(b"PK\x03\x04") or (bool(head.strip()) and b"\x00" not in head)


async def _save(upload: UploadFile, target: Path, limit: int, *, export: bool) -> Path:
    size = 0
    head = b""
    with target.open("wb") as stream:
        while chunk := await upload.read(CHUNK):
            if not head:
                head = chunk[:4096]
            size += len(chunk)
            if size > limit:
                raise ValueError(f"« {upload.filename} » dépasse {limit // (1024 * 1024) or 1} Mo.")
            await asyncio.to_thread(stream.write, chunk)
    if export and not _looks_like_export(head):
        raise ValueError(f"« {upload.filename} » n'est ni un fichier CSV ni un classeur Excel (.xlsx).")
    if not export:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(
                "Le fichier de correspondance doit être un fichier texte TOML en UTF-8."
            ) from exc
    return target


async def _status(services, actor: dict[str, Any]) -> dict[str, Any]:
    # The tickets service decides who may import: a refusal becomes the usual error page.
    return await services.call("tickets", "import_status", actor=actor)


@router.get("/admin/import")
async def import_page(request: Request, services: ServicesDep) -> Response:
    actor = require_actor(request)
    status = await _status(services, actor)
    jobs = sorted(_jobs(request).jobs.values(), key=lambda j: j.started, reverse=True)
    return render_page(request, "import.html", {"status": status, "jobs": jobs})


@router.post("/admin/import")
async def import_submit(request: Request, services: ServicesDep) -> Response:
    actor = require_actor(request)
    status = await _status(services, actor)
    form = await request.form()

    async def start() -> ImportJob:
        tickets = form.get("tickets_file")
        if not isinstance(tickets, UploadFile) or not tickets.filename:
            raise HTTPException(422, "Choisissez le fichier des tickets.")
        jobs = _jobs(request)
        job_id, folder = jobs.new_folder()
        try:
            suffix = lambda upload: ".xlsx" if upload.filename.lower().endswith(".xlsx") else ".csv"  # noqa: E731
            tickets_path = await _save(
                tickets, folder / f"tickets{suffix(tickets)}", MAX_EXPORT_BYTES, export=True
            )
            messages_path = mapping_path = None
            messages = form.get("messages_file")
            if isinstance(messages, UploadFile) and messages.filename:
                messages_path = await _save(
                    messages, folder / f"messages{suffix(messages)}", MAX_EXPORT_BYTES, export=True
                )
            mapping = form.get("mapping_file")
            if isinstance(mapping, UploadFile) and mapping.filename:
                mapping_path = await _save(mapping, folder / "mapping.toml", MAX_MAPPING_BYTES, export=False)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        job = ImportJob(
            id=job_id,
            folder=folder,
            tickets_file=tickets_path,
            messages_file=messages_path,
            mapping_file=mapping_path,
            dry_run=form.get("mode") != "import",
            actor=actor,
        )
        return jobs.start(job, services)

    return await submit_form(
        request,
        str(form.get("csrf_token") or ""),
        start,
        on_error=lambda message, status_code: render_page(
            request, "import.html", {"status": status, "jobs": [], "error": message}, status_code=status_code
        ),
        on_success=lambda job: RedirectResponse(f"/admin/import/{job.id}", status_code=303),
    )


@router.get("/admin/import/{job_id}")
async def import_job_page(job_id: str, request: Request, services: ServicesDep) -> Response:
    actor = require_actor(request)
    await _status(services, actor)
    job = _jobs(request).get(job_id)
    return render_page(request, "import_job.html", {"job": job, "progress": job.progress()})


@router.get("/admin/import/{job_id}/progress")
async def import_job_progress(job_id: str, request: Request, services: ServicesDep) -> JSONResponse:
    actor = require_actor(request)
    await _status(services, actor)
    job = _jobs(request).get(job_id)
    return JSONResponse(job.progress())


@router.post("/admin/import/{job_id}/run")
async def import_job_run(job_id: str, request: Request, services: ServicesDep) -> Response:
    """Run for real the files of a simulation (or run them again)."""
    actor = require_actor(request)
    await _status(services, actor)
    form = await request.form()

    async def run_again() -> ImportJob:
        jobs = _jobs(request)
        job = jobs.get(job_id)
        if job.status in ("waiting", "running"):
            raise HTTPException(409, "Cet import est encore en cours.")
        again = jobs.again(job, services, dry_run=False)
        again.actor = actor
        return again

    return await submit_form(
        request,
        str(form.get("csrf_token") or ""),
        run_again,
        on_error=error_page,
        on_success=lambda again: RedirectResponse(f"/admin/import/{again.id}", status_code=303),
    )


@router.get("/admin/import/{job_id}/rejets.csv")
async def import_job_rejected(job_id: str, request: Request, services: ServicesDep) -> Response:
    actor = require_actor(request)
    await _status(services, actor)
    job = _jobs(request).get(job_id)
    output = io.StringIO()
    writer = csv.writer(output, delimiter=";")
    writer.writerow(["Fichier", "Ligne", "N° ticket", "Motif"])
    for row in job.report.rejected if job.report else []:
        writer.writerow([row.get("file"), row.get("line"), row.get("number"), row.get("reason")])
    return Response(
        "\ufeff" + output.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="rejets.csv"'},
    )
