"""Reading an old helpdesk's export (Simplydesk): CSV or Excel files, a column mapping, French dates.

The export's exact format is unknown (docs/ticket-import.md), so everything about it is configurable in a small TOML
mapping file whose defaults are the likely French column names. This module only *reads*: it turns the files into
normalised ticket dicts (old number, dates in ISO UTC, requester, customer, status..., messages in order, attachment
file names) and lists what it rejected, with reasons. Matching against Comptoir's customers and users and the
writing are done by the tickets service (``comptoir_tickets.importing``), reached through the gateway's
``/api/v1/imports/simplydesk`` API by the ``comptoir import simplydesk`` command and by the admin page.

Messages may be in the tickets file (a description column) and/or in a second file (one row per message, keyed by
the ticket number). They are kept in a temporary SQLite file while the tickets are read, so that an export of
hundreds of thousands of messages does not have to fit in memory.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
import sqlite3
import tempfile
import tomllib
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

TICKET_FIELDS: dict[str, list[str]] = {
    "number": [
        "N° ticket",
        "N° de ticket",
        "Numéro de ticket",
        "Numéro",
        "N°",
        "Num",
        "Ticket",
        "Référence",
        "Ref",
        "ID",
    ],
    "title": ["Sujet", "Titre", "Objet", "Intitulé", "Résumé"],
    "created_at": [
        "Date de création",
        "Créé le",
        "Date d'ouverture",
        "Ouvert le",
        "Date de la demande",
        "Date",
    ],
    "updated_at": [
        "Date de mise à jour",
        "Mis à jour le",
        "Modifié le",
        "Dernière modification",
        "Dernière activité",
    ],
    "closed_at": [
        "Date de clôture",
        "Clôturé le",
        "Date de fermeture",
        "Fermé le",
        "Date de résolution",
        "Résolu le",
    ],
    "status": ["Statut", "État", "Etat"],
    "type": ["Type", "Type de demande", "Catégorie", "Nature"],
    "priority": ["Priorité", "Urgence", "Criticité"],
    "requester_email": [
        "Email demandeur",
        "E-mail demandeur",
        "Email du demandeur",
        "Adresse e-mail",
        "Courriel",
        "E-mail",
        "Email",
        "Mail",
    ],
    "requester_name": ["Demandeur", "Nom du demandeur", "Contact", "Déclarant", "Utilisateur"],
    "customer": ["Client", "Société", "Entreprise", "Raison sociale", "Compte", "Nom du client"],
    "customer_key": ["Code client", "N° client", "Numéro client", "Référence client", "Identifiant client"],
    "assignee": ["Technicien", "Assigné à", "Attribué à", "Responsable", "Intervenant", "Agent"],
    "description": ["Description", "Message", "Contenu", "Détail", "Demande"],
    "attachments": ["Pièces jointes", "Pièce jointe", "Fichiers", "Fichiers joints"],
}
MESSAGE_FIELDS: dict[str, list[str]] = {
    "ticket_number": [
        "N° ticket",
        "N° de ticket",
        "Numéro de ticket",
        "Numéro",
        "Ticket",
        "Référence ticket",
    ],
    "created_at": ["Date", "Date du message", "Date de création", "Créé le", "Envoyé le"],
    "author_name": ["Auteur", "De", "Expéditeur", "Nom", "Intervenant"],
    "author_email": ["Email auteur", "E-mail auteur", "Email de l'auteur", "Email", "E-mail", "Courriel"],
    "author_type": ["Type d'auteur", "Type auteur", "Rôle", "Origine"],
    "body": ["Message", "Contenu", "Texte", "Corps", "Réponse", "Description"],
    "internal": ["Interne", "Note interne", "Privé", "Visibilité"],
    "attachments": ["Pièces jointes", "Pièce jointe", "Fichiers", "Fichiers joints"],
}
REQUIRED_TICKET_FIELDS = ("number",)
REQUIRED_MESSAGE_FIELDS = ("ticket_number", "body")

# Simplydesk values (normalised: lower case, no accents) → Comptoir keys of the default configuration.
DEFAULT_STATUSES = {
    "nouveau": "new",
    "non traite": "new",
    "a traiter": "new",
    "ouvert": "open",
    "en cours": "open",
    "en traitement": "open",
    "pris en charge": "open",
    "en attente": "pending",
    "en attente client": "pending",
    "en attente de reponse": "pending",
    "suspendu": "pending",
    "resolu": "closed",
    "ferme": "closed",
    "clos": "closed",
    "cloture": "closed",
    "termine": "closed",
    "annule": "closed",
}
DEFAULT_TYPES = {
    "incident": "incident",
    "panne": "incident",
    "demande d information": "information",
    "information": "information",
    "question": "information",
    "demande de modification": "change",
    "modification": "change",
    "changement": "change",
    "demande de resiliation": "termination",
    "resiliation": "termination",
    "facturation": "billing",
    "facture": "billing",
}
DEFAULT_PRIORITIES = {
    "urgente": "urgent",
    "urgent": "urgent",
    "critique": "urgent",
    "bloquant": "urgent",
    "haute": "high",
    "haut": "high",
    "elevee": "high",
    "importante": "high",
    "normale": "normal",
    "normal": "normal",
    "moyenne": "normal",
    "basse": "low",
    "bas": "low",
    "faible": "low",
}
TRUE_WORDS = {"oui", "o", "vrai", "true", "1", "x", "yes", "interne", "note interne", "prive", "privee"}
CLIENT_WORDS = {"client", "demandeur", "contact", "utilisateur", "customer"}
STAFF_WORDS = {"technicien", "agent", "support", "admin", "administrateur", "intervenant", "operateur"}

MAX_FILE_NAME = 200


class ImportFileError(ValueError):
    """A file that cannot be read at all (French message for the user)."""


def normalise(value: Any) -> str:
    """Lower case, no accents, punctuation as single spaces: how column names and values are compared."""
    text = unicodedata.normalize("NFKD", str(value or ""))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return re.sub(r"[^0-9a-z@.]+", " ", text).strip()


# --- mapping -------------------------------------------------------------------------------------------------


@dataclass
class Mapping:
    """Which export column holds each field, and how values translate to Comptoir keys."""

    tickets: dict[str, list[str]] = field(
        default_factory=lambda: {k: list(v) for k, v in TICKET_FIELDS.items()}
    )
    messages: dict[str, list[str]] = field(
        default_factory=lambda: {k: list(v) for k, v in MESSAGE_FIELDS.items()}
    )
    statuses: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_STATUSES))
    types: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_TYPES))
    priorities: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_PRIORITIES))
    timezone: str = "Europe/Paris"
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    attachment_separator: str = r"[;|\n]"

    @classmethod
    def load(cls, path: Path | None) -> Mapping:
        if path is None:
            return cls()
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8-sig"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ImportFileError(f"Fichier de correspondance illisible : {exc}") from exc
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Mapping:
        mapping = cls()
        for section, known in (("tickets", TICKET_FIELDS), ("messages", MESSAGE_FIELDS)):
            for name, columns in (raw.get(section) or {}).items():
                if name not in known:
                    raise ImportFileError(f"Champ inconnu dans [{section}] : {name}.")
                columns = [columns] if isinstance(columns, str) else columns
                if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
                    raise ImportFileError(
                        f"[{section}] {name} : une colonne ou une liste de colonnes attendue."
                    )
                # A configured column comes first; the defaults stay as fallbacks.
                getattr(mapping, section)[name] = columns + [c for c in known[name] if c not in columns]
        for section in ("statuses", "types", "priorities"):
            values = raw.get(section) or {}
            if not isinstance(values, dict):
                raise ImportFileError(f"[{section}] : une table « valeur = clé » attendue.")
            getattr(mapping, section).update({normalise(k): str(v) for k, v in values.items()})
        options = raw.get("options") or {}
        for name in ("timezone", "encoding", "delimiter", "sheet", "attachment_separator"):
            if name in options:
                setattr(mapping, name, str(options[name]))
        try:
            ZoneInfo(mapping.timezone)
        except Exception as exc:
            raise ImportFileError(f"Fuseau horaire inconnu : {mapping.timezone}.") from exc
        return mapping

    def fingerprint(self) -> str:
        return hashlib.sha256(repr(sorted(vars(self).items())).encode()).hexdigest()[:16]


def resolve_columns(headers: list[str], wanted: dict[str, list[str]]) -> dict[str, int]:
    """Field → column index, matching names after normalisation; the first candidate found wins."""
    index = {}
    for position, header in enumerate(headers):
        index.setdefault(normalise(header), position)
    found: dict[str, int] = {}
    used: set[int] = set()
    for name, candidates in wanted.items():
        for candidate in candidates:
            position = index.get(normalise(candidate))
            if position is not None and position not in used:
                found[name] = position
                used.add(position)
                break
    return found


# --- dates ---------------------------------------------------------------------------------------------------

_FRENCH_DATE = re.compile(
    r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{2,4})(?:[ T]+(?:à\s*)?(\d{1,2})[:hH](\d{2})(?::(\d{2}))?)?$"
)


def parse_date(value: Any, timezone: str = "Europe/Paris") -> datetime | None:
    """A date of the export as an aware UTC datetime; None if empty; ValueError if unreadable.

    Accepts ``28/11/2026 14:05``, ``28/11/2026 14h05``, ``28/11/2026``, ``28-11-26``, ISO 8601 and Excel cells.
    Times without a zone are local time of ``timezone`` (Simplydesk shows Paris time).
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    zone = ZoneInfo(timezone)
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    else:
        text = str(value).strip()
        match = _FRENCH_DATE.match(text)
        if match:
            day, month, year, hour, minute, second = match.groups()
            year_number = int(year) + (2000 if len(year) == 2 else 0)
            moment = datetime(
                year_number, int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
            )
        else:
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError as exc:
                raise ValueError(f"date illisible « {text[:40]} »") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


# --- files ---------------------------------------------------------------------------------------------------


def detect_encoding(path: Path) -> str:
    """UTF-8 (with or without BOM) if the whole file decodes as such, otherwise Windows-1252."""
    with open(path, "rb") as stream:
        head = stream.read(4)
        if head.startswith(b"\xef\xbb\xbf"):
            return "utf-8-sig"
        stream.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            while chunk := stream.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "cp1252"
    return "utf-8"


def detect_delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (";", ",", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ";"


def _csv_rows(path: Path, mapping: Mapping) -> Iterator[tuple[int, list[Any]]]:
    encoding = mapping.encoding or detect_encoding(path)
    with open(path, encoding=encoding, newline="") as stream:
        first = stream.readline()
        stream.seek(0)
        delimiter = mapping.delimiter or detect_delimiter(first)
        reader = csv.reader(stream, delimiter=delimiter)
        try:
            for row in reader:
                yield reader.line_num, row
        except csv.Error as exc:
            raise ImportFileError(f"{path.name} : CSV invalide ligne {reader.line_num} ({exc}).") from exc


def _xlsx_rows(path: Path, mapping: Mapping) -> Iterator[tuple[int, list[Any]]]:
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise ImportFileError(f"{path.name} : classeur Excel illisible ({exc}).") from exc
    try:
        if mapping.sheet and mapping.sheet not in workbook.sheetnames:
            raise ImportFileError(f"{path.name} : pas de feuille « {mapping.sheet} ».")
        sheet = workbook[mapping.sheet] if mapping.sheet else workbook.worksheets[0]
        for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield number, ["" if cell is None else cell for cell in row]
    finally:
        workbook.close()


def read_rows(path: Path, mapping: Mapping) -> tuple[list[str], Iterator[tuple[int, list[Any]]]]:
    """The header and an iterator of (line number, cells) of a CSV or XLSX file (by content, not by name)."""
    path = Path(path)
    try:
        with open(path, "rb") as stream:
            magic = stream.read(4)
    except OSError as exc:
        raise ImportFileError(f"Fichier introuvable ou illisible : {path}.") from exc
    rows = _xlsx_rows(path, mapping) if magic == b"PK\x03\x04" else _csv_rows(path, mapping)
    for _, header in rows:
        if any(str(cell).strip() for cell in header):
            return [str(cell).strip() for cell in header], rows
    raise ImportFileError(f"{path.name} : fichier vide.")


def _cell(row: list[Any], columns: dict[str, int], name: str) -> Any:
    position = columns.get(name)
    if position is None or position >= len(row):
        return None
    value = row[position]
    if isinstance(value, str):
        value = value.replace("\r\n", "\n").replace("\r", "\n").strip()
        return value or None
    return value


def _number(value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    digits = re.sub(r"^[#A-Za-z\s-]*", "", str(value or "").strip())
    if not re.fullmatch(r"\d{1,12}", digits):
        raise ValueError(f"numéro de ticket invalide « {str(value or '')[:30]} »")
    return int(digits)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _files(value: Any, mapping: Mapping) -> list[str]:
    names = [n.strip() for n in re.split(mapping.attachment_separator, str(value or "")) if n.strip()]
    return [n[:MAX_FILE_NAME] for n in names]


@dataclass
class Rejected:
    file: str
    line: int
    reason: str
    number: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "number": self.number, "reason": self.reason}


@dataclass
class ExportReader:
    """Reads one export (tickets file, optional messages file) into ticket dicts ready for the tickets service."""

    tickets_path: Path
    messages_path: Path | None = None
    mapping: Mapping = field(default_factory=Mapping)
    rejected: list[Rejected] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    ticket_columns: dict[str, int] = field(default_factory=dict)
    message_columns: dict[str, int] = field(default_factory=dict)
    unmapped_values: dict[str, set[str]] = field(default_factory=dict)
    _store: sqlite3.Connection | None = None
    _store_dir: tempfile.TemporaryDirectory | None = None

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._store_dir is not None:
            self._store_dir.cleanup()
            self._store_dir = None

    def __enter__(self) -> ExportReader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def fingerprint(self) -> str:
        """What identifies this export and mapping (for resuming an interrupted run)."""
        digest = hashlib.sha256(self.mapping.fingerprint().encode())
        for path in (self.tickets_path, self.messages_path):
            if path is not None:
                with open(path, "rb") as stream:
                    while chunk := stream.read(1 << 20):
                        digest.update(chunk)
        return digest.hexdigest()[:24]

    def _translate(self, kind: str, value: str | None, table: dict[str, str]) -> str | None:
        if value is None:
            return None
        key = table.get(normalise(value))
        if key is None:
            # Left as in the export: the service still matches it to a key or a label, and reports it otherwise.
            self.unmapped_values.setdefault(kind, set()).add(value)
            return value
        return key

    # --- messages ------------------------------------------------------------------------------------------

    def _load_messages(self) -> None:
        self._store_dir = tempfile.TemporaryDirectory(prefix="comptoir-import-")
        # Read by the thread that iterates over the tickets (the command reads ahead in a thread), closed by another.
        self._store = sqlite3.connect(Path(self._store_dir.name) / "messages.db", check_same_thread=False)
        self._store.execute(
            "CREATE TABLE messages (number INTEGER, position INTEGER, created_at TEXT, line INTEGER, data TEXT)"
        )
        if self.messages_path is None:
            return
        import json

        name = Path(self.messages_path).name
        headers, rows = read_rows(Path(self.messages_path), self.mapping)
        self.message_columns = resolve_columns(headers, self.mapping.messages)
        missing = [f for f in REQUIRED_MESSAGE_FIELDS if f not in self.message_columns]
        if missing:
            raise ImportFileError(
                f"{name} : colonne(s) introuvable(s) : {', '.join(missing)} (en-têtes : {', '.join(headers)})."
            )
        for field_name in MESSAGE_FIELDS:
            if field_name not in self.message_columns and field_name not in REQUIRED_MESSAGE_FIELDS:
                self.warnings.append(f"{name} : pas de colonne pour « {field_name} ».")
        columns = self.message_columns
        seen: set[bytes] = set()
        batch = []
        for position, (line, row) in enumerate(rows):
            if not any(str(c).strip() for c in row):
                continue
            try:
                number = _number(_cell(row, columns, "ticket_number"))
            except ValueError as exc:
                self.rejected.append(Rejected(name, line, str(exc)))
                continue
            body = _text(_cell(row, columns, "body"))
            files = _files(_cell(row, columns, "attachments"), self.mapping)
            if not body and not files:
                self.rejected.append(Rejected(name, line, "message vide", number))
                continue
            try:
                created = parse_date(_cell(row, columns, "created_at"), self.mapping.timezone)
            except ValueError as exc:
                self.rejected.append(Rejected(name, line, str(exc), number))
                continue
            author_type = normalise(_cell(row, columns, "author_type"))
            message = {
                "line": line,
                "created_at": iso(created),
                "author_name": _text(_cell(row, columns, "author_name")),
                "author_email": (_text(_cell(row, columns, "author_email")) or "").lower() or None,
                "author_type": "client"
                if author_type in CLIENT_WORDS
                else "agent"
                if author_type in STAFF_WORDS
                else None,
                "body": body or "(pièce jointe)",
                "internal": normalise(_cell(row, columns, "internal")) in TRUE_WORDS,
                "attachments": files,
            }
            key = hashlib.blake2b(
                repr(
                    (number, message["created_at"], message["author_email"], message["author_name"], body)
                ).encode(),
                digest_size=16,
            ).digest()
            if key in seen:
                self.rejected.append(Rejected(name, line, "message en double", number))
                continue
            seen.add(key)
            batch.append((number, position, message["created_at"] or "", line, json.dumps(message)))
            if len(batch) >= 5000:
                self._store.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, ?)", batch)
                batch.clear()
        self._store.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, ?)", batch)
        self._store.execute("CREATE INDEX ix_messages ON messages (number, created_at, position)")
        self._store.commit()

    def _messages_of(self, numbers: list[int]) -> dict[int, list[dict[str, Any]]]:
        import json

        found: dict[int, list[dict[str, Any]]] = {}
        if self._store is None or not numbers:
            return found
        marks = ",".join("?" * len(numbers))
        query = f"SELECT number, data FROM messages WHERE number IN ({marks}) ORDER BY number, created_at, position"
        for number, data in self._store.execute(query, numbers):
            found.setdefault(number, []).append(json.loads(data))
        return found

    def _orphan_messages(self, known: set[int]) -> None:
        if self._store is None:
            return
        name = Path(self.messages_path).name if self.messages_path else ""
        for number, line in self._store.execute("SELECT number, line FROM messages ORDER BY line"):
            if number not in known:
                self.rejected.append(
                    Rejected(name, line, f"message d'un ticket absent de l'export (n° {number})", number)
                )

    # --- tickets -------------------------------------------------------------------------------------------

    def tickets(self, batch_size: int = 200) -> Iterator[list[dict[str, Any]]]:
        """Batches of ticket dicts, in file order; rejected rows go to ``rejected``."""
        self._load_messages()
        name = Path(self.tickets_path).name
        headers, rows = read_rows(Path(self.tickets_path), self.mapping)
        self.ticket_columns = resolve_columns(headers, self.mapping.tickets)
        missing = [f for f in REQUIRED_TICKET_FIELDS if f not in self.ticket_columns]
        if missing:
            raise ImportFileError(
                f"{name} : colonne(s) introuvable(s) : {', '.join(missing)} (en-têtes : {', '.join(headers)})."
            )
        for field_name in TICKET_FIELDS:
            if field_name not in self.ticket_columns:
                self.warnings.append(f"{name} : pas de colonne pour « {field_name} ».")
        seen: dict[int, int] = {}
        batch: list[dict[str, Any]] = []
        for line, row in rows:
            if not any(str(c).strip() for c in row):
                continue
            ticket = self._ticket(name, line, row, seen)
            if ticket is None:
                continue
            batch.append(ticket)
            if len(batch) >= batch_size:
                yield self._with_messages(batch)
                batch = []
        if batch:
            yield self._with_messages(batch)
        self._orphan_messages(set(seen))

    def _ticket(self, name: str, line: int, row: list[Any], seen: dict[int, int]) -> dict[str, Any] | None:
        columns, zone = self.ticket_columns, self.mapping.timezone
        try:
            number = _number(_cell(row, columns, "number"))
        except ValueError as exc:
            self.rejected.append(Rejected(name, line, str(exc)))
            return None
        if number in seen:
            self.rejected.append(
                Rejected(name, line, f"ticket en double (déjà ligne {seen[number]})", number)
            )
            return None
        dates = {}
        for date_field in ("created_at", "updated_at", "closed_at"):
            try:
                dates[date_field] = parse_date(_cell(row, columns, date_field), zone)
            except ValueError as exc:
                if date_field == "created_at":
                    self.rejected.append(Rejected(name, line, f"date de création : {exc}", number))
                    return None
                self.warnings.append(f"{name} ligne {line} : {date_field} ignorée ({exc}).")
                dates[date_field] = None
        if dates["created_at"] is None:
            self.rejected.append(Rejected(name, line, "date de création manquante", number))
            return None
        seen[number] = line
        assignees = [
            a.strip() for a in re.split(r"[,;/\n]", str(_cell(row, columns, "assignee") or "")) if a.strip()
        ]
        return {
            "number": number,
            "line": line,
            "title": (_text(_cell(row, columns, "title")) or "").replace("\n", " ")[:300] or None,
            "created_at": iso(dates["created_at"]),
            "updated_at": iso(dates["updated_at"]),
            "closed_at": iso(dates["closed_at"]),
            "status": self._translate("status", _text(_cell(row, columns, "status")), self.mapping.statuses),
            "type": self._translate("type", _text(_cell(row, columns, "type")), self.mapping.types),
            "priority": self._translate(
                "priority", _text(_cell(row, columns, "priority")), self.mapping.priorities
            ),
            "requester_email": (_text(_cell(row, columns, "requester_email")) or "").lower() or None,
            "requester_name": _text(_cell(row, columns, "requester_name")),
            "customer": _text(_cell(row, columns, "customer")),
            "customer_key": _text(_cell(row, columns, "customer_key")),
            "assignees": assignees,
            "description": _text(_cell(row, columns, "description")),
            "attachments": _files(_cell(row, columns, "attachments"), self.mapping),
        }

    def _with_messages(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        by_number = self._messages_of([t["number"] for t in batch])
        for ticket in batch:
            messages = []
            if ticket["description"] or ticket["attachments"]:
                messages.append(
                    {
                        "created_at": ticket["created_at"],
                        "author_name": ticket["requester_name"],
                        "author_email": ticket["requester_email"],
                        "author_type": "client",
                        "body": ticket["description"] or "(pièce jointe)",
                        "internal": False,
                        "attachments": ticket["attachments"],
                    }
                )
            for message in by_number.get(ticket["number"], []):
                message.pop("line", None)
                if messages and messages[0]["body"] == message["body"] and not message["internal"]:
                    # The description repeated as the first message of the messages file.
                    messages[0]["attachments"] += [
                        a for a in message["attachments"] if a not in messages[0]["attachments"]
                    ]
                    continue
                messages.append(message)
            ticket["messages"] = messages
            for key in ("description", "attachments"):
                ticket.pop(key)
        return batch

    def unmapped_report(self) -> dict[str, list[str]]:
        return {kind: sorted(values) for kind, values in self.unmapped_values.items()}


# --- results -------------------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    """Totals of a run over every batch answered by the tickets service, plus what the reader rejected."""

    dry_run: bool = False
    counts: dict[str, int] = field(
        default_factory=lambda: {"created": 0, "updated": 0, "unchanged": 0, "rejected": 0, "messages": 0}
    )
    matches: dict[str, dict[str, int]] = field(default_factory=lambda: {"customer": {}, "requester": {}})
    unmatched_customers: dict[str, int] = field(default_factory=dict)
    unmatched_requesters: dict[str, int] = field(default_factory=dict)
    unmatched_assignees: dict[str, int] = field(default_factory=dict)
    warnings: dict[str, int] = field(default_factory=dict)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    crm_available: bool | None = None

    def add_batch(self, answer: dict[str, Any], file_name: str = "") -> None:
        summary = answer.get("summary") or {}
        for key in self.counts:
            self.counts[key] += int(summary.get(key) or 0)
        for kind in ("customer", "requester"):
            for key, value in ((summary.get("matches") or {}).get(kind) or {}).items():
                self.matches[kind][key] = self.matches[kind].get(key, 0) + value
        if answer.get("crm_available") is not None:
            self.crm_available = bool(answer["crm_available"])
        for ticket in answer.get("tickets") or []:
            if ticket["outcome"] == "rejected":
                self.rejected.append(
                    {
                        "file": file_name,
                        "line": ticket.get("line"),
                        "number": ticket.get("number"),
                        "reason": "; ".join(ticket.get("reasons") or []),
                    }
                )
                continue
            customer = ticket.get("customer") or {}
            if customer.get("match") is None and customer.get("source_name"):
                name = str(customer["source_name"])
                self.unmatched_customers[name] = self.unmatched_customers.get(name, 0) + 1
            requester = ticket.get("requester") or {}
            if requester.get("match") is None and requester.get("email"):
                email = str(requester["email"])
                self.unmatched_requesters[email] = self.unmatched_requesters.get(email, 0) + 1
            for name in ticket.get("unmatched_assignees") or []:
                self.unmatched_assignees[name] = self.unmatched_assignees.get(name, 0) + 1
            for warning in ticket.get("warnings") or []:
                if warning.startswith(("technicien", "client non trouvé")):
                    continue
                self.warnings[warning] = self.warnings.get(warning, 0) + 1

    def add_rejected(self, rejected: list[Rejected]) -> None:
        self.rejected.extend(r.to_dict() for r in rejected)
        self.counts["rejected"] += len(rejected)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "counts": self.counts,
            "matches": self.matches,
            "unmatched_customers": self.unmatched_customers,
            "unmatched_requesters": self.unmatched_requesters,
            "unmatched_assignees": self.unmatched_assignees,
            "warnings": self.warnings,
            "rejected": self.rejected,
            "crm_available": self.crm_available,
        }

    def text(self, reader: ExportReader | None = None, limit: int = 15) -> str:
        """The French summary printed at the end of a run."""
        c = self.counts
        verb = "seraient" if self.dry_run else "ont été"
        lines = [
            ("Simulation (rien n'a été écrit)" if self.dry_run else "Import terminé") + " :",
            f"  tickets créés : {c['created']}  mis à jour : {c['updated']}  inchangés : {c['unchanged']}  "
            f"rejetés : {c['rejected']}",
            f"  messages qui {verb} ajoutés : {c['messages']}",
        ]
        labels = {
            "external_key": "code client",
            "name": "nom",
            "requester": "compte du demandeur",
            "contact": "contact CRM",
            "crm": "CRM",
            "user": "compte Comptoir",
            "unmatched": "non identifié",
        }
        for kind, title in (("customer", "Clients"), ("requester", "Demandeurs")):
            parts = [f"{labels.get(k, k)} : {v}" for k, v in sorted(self.matches[kind].items())]
            lines.append(f"  {title} rapprochés — " + (", ".join(parts) or "aucun"))
        if self.crm_available is False:
            lines.append("  CRM indisponible : rapprochement par code client et contacts CRM non fait.")
        for title, values in (
            ("Clients non trouvés", self.unmatched_customers),
            ("Demandeurs non identifiés (adresse conservée)", self.unmatched_requesters),
            ("Techniciens non trouvés", self.unmatched_assignees),
            ("Avertissements", self.warnings),
        ):
            if values:
                top = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
                more = f" (+{len(values) - limit} autres)" if len(values) > limit else ""
                lines.append(f"  {title} ({len(values)}) : " + ", ".join(f"{k} ×{v}" for k, v in top) + more)
        if reader is not None:
            for kind, values in reader.unmapped_report().items():
                lines.append(f"  Valeurs de {kind} sans correspondance : " + ", ".join(values[:limit]))
            for warning in reader.warnings[:limit]:
                lines.append(f"  {warning}")
        return "\n".join(lines)
