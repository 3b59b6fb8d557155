"""FileMaker: the Data API client (python-fmrest, one reused session, retries) and the record → customer mapping.

Nothing here touches the database; :mod:`comptoir_crm_sync.sync` applies what this module reads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import fmrest
from fmrest.exceptions import BadGatewayError, BadJSON, FileMakerError, FMRestException, RequestException

from comptoir_crm_sync.directory import ContactData, CustomerData, split_emails
from comptoir_crm_sync.settings import CrmSyncSettings, FileMakerMapping

log = logging.getLogger(__name__)

FM_TIMESTAMP = "%m/%d/%Y %H:%M:%S"
# FileMaker codes worth retrying: quota, too many sessions, server busy/unavailable.
TRANSIENT_CODES = {953, 956, 8003, 812, 10, 16}
NO_RECORDS_CODES = {401, 101}
CODE_LABELS = {
    102: "champ inconnu (vérifiez la correspondance des champs)",
    105: "modèle (layout) introuvable",
    212: "identifiant ou mot de passe FileMaker refusé",
    802: "base de données FileMaker introuvable",
    952: "session FileMaker expirée",
    953: "quota de transfert de l'API FileMaker dépassé",
    956: "trop de sessions FileMaker ouvertes",
}


class SyncFailed(Exception):
    """The pass cannot go on (FileMaker unreachable after the retries, bad configuration); French message."""


class BadRecord(Exception):
    """One record cannot be mapped; the pass reports it and goes on."""


def format_timestamp(moment: datetime) -> str:
    return moment.strftime(FM_TIMESTAMP)


def parse_timestamp(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    text = str(value).strip()
    for fmt in (FM_TIMESTAMP, "%m/%d/%Y %H:%M", "%Y-%m-%d %H:%M:%S", "%m/%d/%Y"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


# ------------------------------------------------------------------------------------------------- mapping


@dataclass
class SourceRecord:
    """A record as the Data API returns it, independent of python-fmrest's Record class."""

    record_id: str
    mod_id: str
    fields: dict[str, Any]
    portals: dict[str, list[dict[str, Any]]]


@dataclass
class MappedRecord:
    key: str
    modified_at: datetime | None
    data: CustomerData
    dropped_emails: list[str]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _portal_value(row: dict[str, Any], field_name: str) -> Any:
    """A portal row's field, whether FileMaker qualifies it (``Contacts::Email``) or not."""
    if not field_name:
        return None
    if field_name in row:
        return row[field_name]
    suffix = "::" + field_name
    for key, value in row.items():
        if key.endswith(suffix):
            return value
    return None


def map_record(record: SourceRecord, mapping: FileMakerMapping) -> MappedRecord:
    """A FileMaker record → the directory's view of it. Raises BadRecord when it cannot be used at all."""
    fields = record.fields
    key = _text(fields.get(mapping.key_field))
    if not key:
        raise BadRecord(f"champ clé « {mapping.key_field} » vide ou absent")
    modified_raw = fields.get(mapping.mod_field) if mapping.mod_field else None
    modified_at = parse_timestamp(modified_raw)
    if mapping.mod_field and modified_raw not in (None, "") and modified_at is None:
        raise BadRecord(f"horodatage « {mapping.mod_field} » illisible : {modified_raw!r}")
    used = {mapping.key_field, mapping.mod_field, "recordId", "modId"}

    def take(name: str) -> str:
        if not name:
            return ""
        used.add(name)
        return _text(fields.get(name))

    street = "\n".join(line for line in (take(n) for n in mapping.address_fields) if line)
    address = {
        "street": street,
        "postal_code": take(mapping.postal_code_field),
        "city": take(mapping.city_field),
        "country": take(mapping.country_field),
    }
    address = {k: v for k, v in address.items() if v}
    dropped: list[str] = []

    def valid(emails: list[str]) -> list[str]:
        from comptoir_crm_sync.directory import is_valid_email

        good = [e for e in emails if is_valid_email(e)]
        dropped.extend(e for e in emails if e not in good)
        return good

    contacts: list[ContactData] = []
    if mapping.contacts_portal:
        for row in record.portals.get(mapping.contacts_portal, []):
            emails = valid(split_emails([_portal_value(row, f) for f in mapping.contact_email_fields]))
            first = _text(_portal_value(row, mapping.contact_first_name_field))
            last = _text(_portal_value(row, mapping.contact_name_field))
            name = " ".join(part for part in (first, last) if part)
            row_key = _text(_portal_value(row, mapping.contact_key_field)) or None
            if not name and not emails:
                continue
            contacts.append(
                ContactData(
                    name=name,
                    emails=emails,
                    phone=_text(_portal_value(row, mapping.contact_phone_field)) or None,
                    role=_text(_portal_value(row, mapping.contact_role_field)) or None,
                    external_key=f"fm:{row_key}" if row_key else None,
                )
            )
    company_emails = valid(split_emails(take(mapping.email_field)))
    name = take(mapping.name_field)
    if company_emails:
        contacts.append(
            ContactData(name=name, emails=company_emails, role="Adresse générale", external_key="company")
        )
    domains = [
        d.strip().lower() for d in take(mapping.email_domains_field).replace(";", ",").split(",") if d.strip()
    ]
    active = True
    if mapping.active_field:
        flag = take(mapping.active_field).casefold()
        active = flag in ("1", "oui", "yes", "true", "vrai", "actif", "active", "x")
    if len(name) > 300:
        raise BadRecord(f"raison sociale trop longue ({len(name)} caractères)")
    data = CustomerData(
        name=name,
        account_number=take(mapping.account_number_field) or None,
        addresses=[address] if address else [],
        phone=take(mapping.phone_field) or None,
        email_domains=domains,
        sales_rep_ref=take(mapping.sales_rep_field) or None,
        parent_external_key=take(mapping.parent_key_field) or None,
        active=active,
        extra={k: v for k, v in fields.items() if k not in used and v not in (None, "")},
        contacts=contacts,
    )
    if not data.name:
        raise BadRecord(f"champ « {mapping.name_field} » (raison sociale) vide")
    return MappedRecord(key=key, modified_at=modified_at, data=data, dropped_emails=dropped)


# ------------------------------------------------------------------------------------------------- client


def _from_fmrest(record) -> SourceRecord:
    values = record.to_dict()
    fields: dict[str, Any] = {}
    portals: dict[str, list[dict[str, Any]]] = {}
    for key, value in values.items():
        if key.startswith("portal_"):
            portals[key[len("portal_") :]] = [row.to_dict() for row in value]
        elif key not in ("recordId", "modId"):
            fields[key] = value
    return SourceRecord(
        record_id=str(values.get("recordId")), mod_id=str(values.get("modId")), fields=fields, portals=portals
    )


class FileMakerClient:
    """One python-fmrest ``Server`` reused across passes (it re-logs in on ``952``), with retries and backoff.

    Not thread-safe, like the Server it wraps: one sync at a time per process (the service guarantees it).
    """

    def __init__(self, settings: CrmSyncSettings, sleep: Callable[[float], None] = time.sleep):
        self.settings = settings
        self.mapping = settings.filemaker
        self.sleep = sleep
        self.server = fmrest.Server(
            settings.filemaker_url.rstrip("/"),
            user=settings.filemaker_user,
            password=settings.filemaker_password,
            database=settings.filemaker_database,
            layout=self.mapping.layout,
            api_version="vLatest",
            verify_ssl=settings.filemaker_verify,
            auto_relogin=True,
            timeout=settings.filemaker_timeout,
        )
        self.calls = 0

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        """Run one Data API request; None when FileMaker says "no records"; retries what may pass later."""
        attempts = max(1, self.settings.sync_retries)
        delay = self.settings.sync_backoff
        last: Exception | None = None
        for attempt in range(1, attempts + 1):
            try:
                if not self.server._token:
                    self.server.login()
                self.calls += 1
                return fn()
            except FileMakerError as exc:
                code = self.server.last_error
                if code in NO_RECORDS_CODES:
                    return None
                if code == 952:  # the re-login itself met an expired token: start a fresh session
                    self.server._token = None
                elif code not in TRANSIENT_CODES:
                    label = CODE_LABELS.get(code, str(exc))
                    raise SyncFailed(
                        f"FileMaker a refusé la requête ({what}) : erreur {code}, {label}"
                    ) from exc
                last = exc
            except (BadGatewayError, BadJSON, RequestException, FMRestException) as exc:
                last = exc
            if attempt < attempts:
                log.warning(
                    "FileMaker %s failed (%s); retry %d/%d in %.1fs", what, last, attempt, attempts, delay
                )
                self.sleep(delay)
                delay = min(delay * 2, 60.0)
        raise SyncFailed(f"FileMaker ne répond pas correctement ({what}) après {attempts} essais : {last}")

    def find_modified_since(self, since: datetime, offset: int, limit: int) -> list[SourceRecord]:
        query = [{self.mapping.mod_field: ">=" + format_timestamp(since)}]
        sort = [
            {"fieldName": self.mapping.mod_field, "sortOrder": "ascend"},
            {"fieldName": self.mapping.key_field, "sortOrder": "ascend"},
        ]
        found = self._call(
            "recherche des fiches modifiées",
            lambda: list(self.server.find(query, sort=sort, offset=offset, limit=limit)),
        )
        return [_from_fmrest(r) for r in found or []]

    def all_records(self, offset: int, limit: int) -> list[SourceRecord]:
        sort = [{"fieldName": self.mapping.key_field, "sortOrder": "ascend"}]
        found = self._call(
            "lecture de toutes les fiches",
            lambda: list(self.server.get_records(offset=offset, limit=limit, sort=sort)),
        )
        return [_from_fmrest(r) for r in found or []]

    def find_by_key(self, key: str) -> list[SourceRecord]:
        query = [{self.mapping.key_field: "==" + key}]
        found = self._call("vérification d'une fiche", lambda: list(self.server.find(query, limit=10)))
        return [_from_fmrest(r) for r in found or []]

    def close(self) -> None:
        if self.server._token:
            try:
                self.server.logout()
            except FMRestException:
                pass
