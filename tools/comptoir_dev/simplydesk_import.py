"""``comptoir import simplydesk``: read a Simplydesk export and import it through the gateway's API.

It talks to a running (possibly deployed) Comptoir as an admin (``COMPTOIR_TOKEN``, or ``--email`` and
``COMPTOIR_PASSWORD``): the tickets service applies its access rules and does the matching, this command only reads
the files, uploads attachments, sends batches and shows progress. A state file next to the export remembers the
batches already done, so an interrupted run started again resumes where it stopped (and since the import is
idempotent on the old ticket number, re-sending a batch is harmless anyway).
"""

from __future__ import annotations

import csv
import getpass
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from queue import Full, Queue
from typing import Any, TextIO

import httpx
from comptoir_common.ticket_import import (
    ExportReader,
    ImportFileError,
    ImportReport,
    Mapping,
    read_rows,
)

RETRIES = 5
UPLOAD_GROUP = 10


class ImportAborted(RuntimeError):
    pass


def count_rows(path: Path, mapping: Mapping) -> int:
    _, rows = read_rows(path, mapping)
    return sum(1 for _, row in rows if any(str(c).strip() for c in row))


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {seconds:02d} s"
    return f"{seconds} s"


class Progress:
    """A one-line progress bar with rate and time left (a line per 10 % when not on a terminal)."""

    def __init__(self, total: int, stream: TextIO = sys.stderr, width: int = 30):
        self.total = max(total, 1)
        self.done = 0
        self.stream = stream
        self.width = width
        self.started = time.monotonic()
        self.skipped = 0
        self.tty = stream.isatty()
        self._last_decile = -1

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        worked = self.done - self.skipped
        rate = worked / elapsed
        left = (self.total - self.done) / rate if rate > 0 else 0
        filled = int(self.width * min(self.done, self.total) / self.total)
        percent = 100 * min(self.done, self.total) / self.total
        return (
            f"[{'#' * filled}{'-' * (self.width - filled)}] {percent:5.1f} % "
            f"{self.done}/{self.total} tickets · {rate:,.0f} tickets/s · reste {_duration(left)}"
        ).replace(",", " ")

    def advance(self, count: int, skipped: bool = False) -> None:
        self.done += count
        if skipped:
            self.skipped += count
        if self.tty:
            self.stream.write("\r" + self.line())
            self.stream.flush()
        else:
            decile = int(10 * self.done / self.total)
            if decile != self._last_decile:
                self._last_decile = decile
                self.stream.write(self.line() + "\n")

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\n")
        elapsed = time.monotonic() - self.started
        self.stream.write(f"Durée : {_duration(elapsed)}\n")


class Api:
    """The gateway's import API, with retries on what a restart or a busy moment causes."""

    def __init__(
        self, url: str, token: str | None, email: str | None, password: str | None, timeout: float = 120.0
    ):
        self.http = httpx.Client(base_url=url.rstrip("/"), timeout=timeout)
        if not token:
            if not email:
                raise ImportAborted(
                    "Identifiants manquants : COMPTOIR_TOKEN, ou --email et COMPTOIR_PASSWORD."
                )
            response = self.http.post("/api/v1/auth/login", json={"email": email, "password": password or ""})
            if response.status_code != 200:
                raise ImportAborted(f"Connexion refusée : {self._message(response)}")
            token = response.json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {token}"

    @staticmethod
    def _message(response: httpx.Response) -> str:
        try:
            detail = response.json().get("detail")
        except ValueError:
            return response.text[:200]
        if isinstance(detail, dict):
            return str(detail.get("message") or detail)
        return str(detail)

    def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        for attempt in range(RETRIES):
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                error = f"Comptoir injoignable ({exc})"
            else:
                if response.status_code < 400:
                    return response.json()
                if response.status_code < 500 and response.status_code != 429:
                    raise ImportAborted(f"Refusé ({response.status_code}) : {self._message(response)}")
                error = f"Erreur {response.status_code} : {self._message(response)}"
            time.sleep(min(2**attempt, 20))
        raise ImportAborted(error + " — relancez la même commande pour reprendre.")

    def close(self) -> None:
        self.http.close()


class State:
    """Batches done of one export (by fingerprint), saved after each batch."""

    def __init__(self, path: Path, fingerprint: str):
        self.path = path
        self.fingerprint = fingerprint
        self.batches_done = 0
        self.report: dict[str, Any] | None = None
        if path.exists():
            try:
                saved = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                saved = {}
            if saved.get("fingerprint") == fingerprint:
                self.batches_done = int(saved.get("batches_done") or 0)
                self.report = saved.get("report")

    def save(self, batches_done: int, report: ImportReport) -> None:
        self.batches_done = batches_done
        temp = self.path.with_suffix(".tmp")
        temp.write_text(
            json.dumps(
                {"fingerprint": self.fingerprint, "batches_done": batches_done, "report": report.to_dict()}
            ),
            encoding="utf-8",
        )
        os.replace(temp, self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


class Attachments:
    """Export file names → blob references, uploaded once per run."""

    def __init__(self, api: Api | None, directory: Path | None, dry_run: bool):
        self.api = api
        self.directory = directory
        self.dry_run = dry_run
        self.known: dict[Path, dict[str, Any]] = {}
        self.missing: set[str] = set()

    def find(self, number: int, name: str) -> Path | None:
        if self.directory is None:
            return None
        for candidate in (
            self.directory / name,
            self.directory / str(number) / name,
            self.directory / Path(name).name,
        ):
            try:
                if candidate.resolve().is_relative_to(self.directory.resolve()) and candidate.is_file():
                    return candidate
            except OSError:
                continue
        return None

    def resolve(self, batch: list[dict[str, Any]]) -> None:
        """Replace the file names of the batch's messages by blob references (missing files are reported)."""
        wanted: list[Path] = []
        for ticket in batch:
            for message in ticket["messages"]:
                paths = []
                for name in message.get("attachments") or []:
                    path = self.find(ticket["number"], name)
                    if path is None:
                        self.missing.add(f"n° {ticket['number']} : {name}")
                    else:
                        paths.append(path)
                        if path not in self.known:
                            wanted.append(path)
                message["_paths"] = paths
        if not self.dry_run and self.api is not None:
            unique = list(dict.fromkeys(wanted))
            for start in range(0, len(unique), UPLOAD_GROUP):
                group = unique[start : start + UPLOAD_GROUP]
                handles = [path.open("rb") for path in group]
                try:
                    answer = self.api.request(
                        "POST",
                        "/api/v1/imports/simplydesk/files",
                        files=[
                            ("files", (path.name, handle))
                            for path, handle in zip(group, handles, strict=True)
                        ],
                    )
                finally:
                    for handle in handles:
                        handle.close()
                for path, ref in zip(group, answer["files"], strict=True):
                    self.known[path] = ref
        for ticket in batch:
            for message in ticket["messages"]:
                paths = message.pop("_paths")
                message["attachments"] = [self.known[p] for p in paths if p in self.known]


def prefetched(batches: Iterator[list[dict[str, Any]]], ahead: int = 2) -> Iterator[list[dict[str, Any]]]:
    """The batches, read by a thread of their own while the previous ones are being imported: reading the files and
    waiting for the service overlap instead of taking turns. Close it to stop the thread."""
    queue: Queue = Queue(maxsize=ahead)
    done = object()
    stop = threading.Event()

    def offer(item: Any) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.5)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in batches:
                if not offer(batch):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            offer(exc)
            return
        offer(done)

    thread = threading.Thread(target=produce, name="import-reader", daemon=True)
    thread.start()
    try:
        while (item := queue.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=10)


def write_rejected(path: Path, rejected: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as stream:
        writer = csv.writer(stream, delimiter=";")
        writer.writerow(["Fichier", "Ligne", "N° ticket", "Motif"])
        for row in rejected:
            writer.writerow([row.get("file"), row.get("line"), row.get("number"), row.get("reason")])


def run(
    *,
    tickets_file: Path,
    messages_file: Path | None = None,
    attachments_dir: Path | None = None,
    mapping_file: Path | None = None,
    dry_run: bool = False,
    url: str,
    token: str | None = None,
    email: str | None = None,
    password: str | None = None,
    batch_size: int = 200,
    state_file: Path | None = None,
    rejected_file: Path | None = None,
    out: TextIO = sys.stdout,
    progress_stream: TextIO = sys.stderr,
) -> ImportReport:
    mapping = Mapping.load(mapping_file)
    if attachments_dir is not None and not attachments_dir.is_dir():
        raise ImportFileError(f"Dossier des pièces jointes introuvable : {attachments_dir}.")
    api = Api(url, token, email, password)
    reader = ExportReader(tickets_file, messages_file, mapping)
    batches = None
    try:
        total = count_rows(tickets_file, mapping)
        state_file = state_file or tickets_file.with_name(tickets_file.name + ".import-state.json")
        state = State(state_file, reader.fingerprint()) if not dry_run else None
        report = ImportReport(dry_run=dry_run)
        if state is not None and state.report:
            for key, value in state.report.items():
                if hasattr(report, key) and key != "dry_run":
                    setattr(report, key, value)
            out.write(f"Reprise après {state.batches_done} lot(s) déjà importé(s).\n")
        attachments = Attachments(api, attachments_dir, dry_run)
        progress = Progress(total, progress_stream)
        batches = prefetched(reader.tickets(batch_size))
        for index, batch in enumerate(batches):
            if state is not None and index < state.batches_done:
                progress.advance(len(batch), skipped=True)
                continue
            attachments.resolve(batch)
            answer = api.request(
                "POST", "/api/v1/imports/simplydesk/batch", json={"tickets": batch, "dry_run": dry_run}
            )
            report.add_batch(answer, tickets_file.name)
            if state is not None:
                state.save(index + 1, report)
            progress.advance(len(batch))
        progress.finish()
        reader_rejected = [r for r in reader.rejected]
        report.add_rejected(reader_rejected)
        for missing in sorted(attachments.missing):
            report.warnings[f"pièce jointe introuvable ({missing})"] = 1
        rejected_file = rejected_file or tickets_file.with_name(tickets_file.stem + ".rejets.csv")
        if report.rejected:
            write_rejected(rejected_file, report.rejected)
        out.write(report.text(reader) + "\n")
        if report.rejected:
            out.write(f"Lignes rejetées et motifs : {rejected_file}\n")
        if state is not None:
            state.clear()
        return report
    finally:
        if batches is not None:
            batches.close()  # stops the reading thread before its files are closed
        reader.close()
        api.close()


def main(args: Any) -> int:
    password = os.environ.get("COMPTOIR_PASSWORD")
    if args.email and not os.environ.get("COMPTOIR_TOKEN") and password is None:
        password = getpass.getpass("Mot de passe : ")
    try:
        report = run(
            tickets_file=args.tickets_file,
            messages_file=args.messages,
            attachments_dir=args.attachments,
            mapping_file=args.mapping,
            dry_run=args.dry_run,
            url=args.url,
            token=os.environ.get("COMPTOIR_TOKEN"),
            email=args.email,
            password=password,
            batch_size=args.batch_size,
            rejected_file=args.rejected_log,
        )
    except (ImportFileError, ImportAborted) as exc:
        sys.stderr.write(f"\nErreur : {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("\nInterrompu : relancez la même commande pour reprendre.\n")
        return 130
    return 1 if report.counts["rejected"] and not report.dry_run and args.strict else 0
