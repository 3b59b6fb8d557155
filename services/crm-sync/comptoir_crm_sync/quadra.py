"""Quadra (CaSystem's accounting): import customer accounts from an ASCII export or from ``mdb-export ... Comptes``.

1. ASCII export: Windows-1252, CRLF, fixed width; the first character is the record type (``C`` account, ``M``
   movement, ``I`` analytic, ...). Only ``C`` lines of customer accounts (type ``C`` at position 218, or a collective
   account starting with ``411`` when the type is blank) are imported; every other line is skipped and counted.
   Positions come from :class:`~comptoir_crm_sync.settings.QuadraLayout` (the address zone's split is an assumption:
   configurable, see ``docs/crm-sync.md``). Short lines are padded, long ones cut.
2. The CSV that ``mdb-export qcompta.mdb Comptes`` writes (header line, comma-separated, double quotes): columns
   ``Numero``, ``Type`` (``C`` customers), ``Intitule``, ``Collectif``, ``CompteInactif``; address, phone and email
   columns are used when present; every other column is kept in ``extra``.

The external key is the account number, with source ``quadra``. An import is one transaction: re-importing the same
file changes nothing (and publishes nothing); a customer missing from a new export is deactivated, never deleted.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from comptoir_common.db import utcnow
from comptoir_common.errors import InvalidInput, PermissionDenied
from sqlalchemy.orm import Session

from comptoir_crm_sync import directory, policy
from comptoir_crm_sync.directory import ContactData, CustomerData
from comptoir_crm_sync.models import SyncRejection, SyncState
from comptoir_crm_sync.settings import QuadraLayout

SOURCE = "quadra"
MAX_FILE_SIZE = 50 * 1024 * 1024
BATCH = 500
TRUE_VALUES = {"1", "-1", "true", "vrai", "oui", "yes", "o", "x"}


@dataclass
class QuadraAccount:
    line: int
    number: str
    name: str
    address: dict[str, str] = field(default_factory=dict)
    phone: str | None = None
    emails: list[str] = field(default_factory=list)
    active: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ParsedFile:
    format: str
    accounts: list[QuadraAccount] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)  # why → how many lines
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, what)

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1


@dataclass
class ImportReport:
    format: str
    accounts: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    rejected: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    problems: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "accounts": self.accounts,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deactivated": self.deactivated,
            "rejected": self.rejected,
            "skipped": dict(self.skipped),
            "problems": list(self.problems[:200]),
        }


# ------------------------------------------------------------------------------------------------- parsing


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def detect_format(data: bytes) -> str | None:
    """``ascii``, ``csv`` or None (not a Quadra export): the upload check, by content."""
    if not data or b"\x00" in data[:4096]:
        return None
    text = _decode(data[:8192])
    first = text.lstrip().splitlines()[0] if text.strip() else ""
    header = [h.strip().strip('"').casefold() for h in first.split(",")]
    if "numero" in header and ("intitule" in header or "type" in header):
        return "csv"
    lines = [line for line in text.splitlines() if line.strip()]
    # Fixed-width records, each starting with its type letter (C account, M movement, I analytic, ...).
    if lines and all(line[0] in "CMIRJEVPAXSTBHGOWNK" and len(line) >= 20 for line in lines[:50]):
        return "ascii"
    return None


def _field(line: str, spec: tuple[int, int]) -> str:
    start, length = spec
    return line[start - 1 : start - 1 + length].strip()


def parse_ascii(data: bytes, layout: QuadraLayout | None = None) -> ParsedFile:
    layout = layout or QuadraLayout()
    text = data.decode("cp1252", errors="replace")
    parsed = ParsedFile(format="ascii")
    width = max(start + length - 1 for start, length in layout.model_dump().values())
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        kind = line[0]
        if kind != "C":
            parsed.skip(f"lignes {kind}" if kind.isalnum() else "lignes illisibles")
            continue
        line = line.ljust(width)
        account_type = _field(line, layout.account_type).upper()
        collective = _field(line, layout.collective_account)
        is_customer = account_type == "C" or (account_type == "" and collective.startswith("411"))
        if not is_customer:
            parsed.skip(f"comptes de type {account_type or '?'}")
            continue
        account = _field(line, layout.account_number)
        if not account:
            parsed.problems.append((number, "numéro de compte vide"))
            continue
        label = _field(line, layout.label)
        alpha = _field(line, layout.alpha_key)
        address = {
            "street": _field(line, layout.street),
            "postal_code": _field(line, layout.postal_code),
            "city": _field(line, layout.city),
        }
        if not label:
            parsed.problems.append((number, f"compte {account} sans intitulé : nommé d'après sa clé"))
        parsed.accounts.append(
            QuadraAccount(
                line=number,
                number=account,
                name=label or alpha or f"Compte {account}",
                address={k: v for k, v in address.items() if v},
                extra={
                    k: v
                    for k, v in {
                        "cle_alpha": alpha,
                        "compte_collectif": collective,
                        "zone_adresse": _field(line, layout.address_zone),
                        "zone_adresse_2": _field(line, layout.address_zone_2),
                    }.items()
                    if v
                },
            )
        )
    return parsed


# Comptes columns that feed directory fields (matched case- and accent-insensitively).
CSV_COLUMNS = {
    "numero": "number",
    "type": "type",
    "intitule": "name",
    "collectif": "collective",
    "compteinactif": "inactive",
    "adresse1": "street",
    "adresse": "street",
    "adresse2": "street2",
    "codepostal": "postal_code",
    "ville": "city",
    "pays": "country",
    "telephone": "phone",
    "email": "email",
}


def parse_mdb_csv(data: bytes) -> ParsedFile:
    text = _decode(data)
    parsed = ParsedFile(format="csv")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return parsed
    names = [directory.fold(h).replace(" ", "").replace("_", "") for h in header]
    for number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        mapped: dict[str, str] = {}
        extra: dict[str, Any] = {}
        for i, column in enumerate(header):
            value = row[i].strip() if i < len(row) else ""
            target = CSV_COLUMNS.get(names[i])
            if target:
                mapped[target] = value
            elif value:
                extra[column] = value
        account_type = mapped.get("type", "").upper()
        if not (account_type == "C" or (not account_type and mapped.get("collective", "").startswith("411"))):
            parsed.skip(f"comptes de type {account_type or '?'}")
            continue
        account = mapped.get("number", "")
        if not account:
            parsed.problems.append((number, "numéro de compte vide"))
            continue
        street = "\n".join(v for v in (mapped.get("street", ""), mapped.get("street2", "")) if v)
        address = {
            "street": street,
            "postal_code": mapped.get("postal_code", ""),
            "city": mapped.get("city", ""),
            "country": mapped.get("country", ""),
        }
        if not mapped.get("name"):
            parsed.problems.append((number, f"compte {account} sans intitulé : nommé d'après son numéro"))
        if mapped.get("collective"):
            extra["Collectif"] = mapped["collective"]
        parsed.accounts.append(
            QuadraAccount(
                line=number,
                number=account,
                name=mapped.get("name") or f"Compte {account}",
                address={k: v for k, v in address.items() if v},
                phone=mapped.get("phone") or None,
                emails=directory.split_emails(mapped.get("email")),
                active=mapped.get("inactive", "").strip().casefold() not in TRUE_VALUES,
                extra=extra,
            )
        )
    return parsed


def parse(data: bytes, layout: QuadraLayout | None = None) -> ParsedFile:
    kind = detect_format(data)
    if kind == "csv":
        return parse_mdb_csv(data)
    if kind == "ascii":
        return parse_ascii(data, layout)
    raise InvalidInput(
        "Ce fichier n'est pas un export Quadra reconnu (export ASCII, ou CSV de « mdb-export … Comptes »)."
    )


# ------------------------------------------------------------------------------------------------- import


def import_accounts(
    session: Session,
    parsed: ParsedFile,
    *,
    actor: dict | None = None,
    filename: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Apply a parsed export in the caller's transaction; customers absent from it are deactivated."""
    report = ImportReport(format=parsed.format, skipped=dict(parsed.skipped))
    report.problems = [{"line": line, "problem": what} for line, what in parsed.problems]
    total = len(parsed.accounts)
    seen: set[str] = set()
    event_actor = directory._event_actor(actor)
    for start in range(0, total, BATCH):
        batch: list[tuple[QuadraAccount, directory.SourceItem]] = []
        for account in parsed.accounts[start : start + BATCH]:
            if account.number in seen:
                report.rejected += 1
                report.problems.append(
                    {"line": account.line, "problem": f"compte {account.number} en double"}
                )
                continue
            seen.add(account.number)
            contacts = (
                [
                    ContactData(
                        name=account.name,
                        emails=account.emails,
                        role="Adresse générale",
                        external_key="company",
                    )
                ]
                if account.emails
                else []
            )
            data = CustomerData(
                name=account.name,
                account_number=account.number,
                addresses=[account.address] if account.address else [],
                phone=account.phone,
                active=account.active,
                extra=account.extra,
                contacts=contacts,
            )
            batch.append((account, directory.SourceItem(account.number, data)))
        results = directory.upsert_many_from_source(
            session, source=SOURCE, items=[item for _, item in batch], actor=event_actor
        )
        for (account, _), result in zip(batch, results, strict=True):
            if result.outcome != "rejected":
                setattr(report, result.outcome, getattr(report, result.outcome) + 1)
                continue
            report.rejected += 1
            report.problems.append(
                {"line": account.line, "problem": f"compte {account.number} : {result.error}"}
            )
            session.add(
                SyncRejection(
                    source=SOURCE,
                    external_key=account.number,
                    reason=str(result.error),
                    record={"line": account.line},
                )
            )
        done = min(total, start + BATCH)
        if progress:
            progress(done, total)
    report.accounts = len(seen)
    report.deactivated = len(
        directory.deactivate_missing(session, source=SOURCE, present_keys=seen, actor=actor)
    )
    _record(session, report, filename)
    return report


def _record(session: Session, report: ImportReport, filename: str) -> None:
    state = session.get(SyncState, SOURCE)
    if state is None:
        state = SyncState(source=SOURCE, last_counts={})
        session.add(state)
    now = utcnow()
    state.last_run_kind = "import"
    state.last_run_started_at = now
    state.last_run_finished_at = now
    state.last_run_ok = True
    state.watermark = (filename or "")[:40] or None
    state.last_counts = {
        "created": report.created,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "deactivated": report.deactivated,
        "rejected": report.rejected,
    }


def import_file(
    session: Session,
    data: bytes,
    *,
    actor: dict,
    filename: str = "",
    layout: QuadraLayout | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Parse and import an export (admins). InvalidInput when the file is not a Quadra export."""
    if not policy.can_manage(actor):
        raise PermissionDenied("Seuls les superviseurs peuvent importer un export Quadra.")
    if len(data) > MAX_FILE_SIZE:
        raise InvalidInput("Fichier trop volumineux pour un export Quadra.")
    parsed = parse(data, layout)
    if not parsed.accounts and not parsed.skipped:
        raise InvalidInput("Aucun compte trouvé dans ce fichier.")
    if not parsed.accounts:
        raise InvalidInput(
            "Aucun compte client dans ce fichier : rien n'a été importé (les clients existants sont conservés)."
        )
    return import_accounts(session, parsed, actor=actor, filename=filename, progress=progress)


def import_blob(session: Session, *, actor: dict, blob_key: str, filename: str, settings) -> dict[str, Any]:
    """An export uploaded through the gateway (stored in the blob store), imported; the report as JSON."""
    from comptoir_common.blobs import DirectoryBlobStore

    if not policy.can_manage(actor):
        raise PermissionDenied("Seuls les superviseurs peuvent importer un export Quadra.")
    try:
        with DirectoryBlobStore(settings.blob_root).open(blob_key) as stream:
            data = stream.read(MAX_FILE_SIZE + 1)
    except (ValueError, OSError) as exc:
        raise InvalidInput("Fichier introuvable : renvoyez-le.") from exc
    return import_file(session, data, actor=actor, filename=filename, layout=settings.quadra).to_dict()
