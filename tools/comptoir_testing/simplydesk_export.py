"""Generated Simplydesk exports (CSV and XLSX) with the mess real exports have, for tests and the benchmark."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

TICKET_HEADERS = [
    "N° ticket",
    "Sujet",
    "Date de création",
    "Date de clôture",
    "Statut",
    "Type",
    "Priorité",
    "Demandeur",
    "Email demandeur",
    "Client",
    "Technicien",
    "Description",
]
MESSAGE_HEADERS = ["N° ticket", "Date", "Auteur", "Email auteur", "Message", "Note interne"]


def french(moment: datetime, with_time: bool = True) -> str:
    return moment.strftime("%d/%m/%Y %H:%M" if with_time else "%d/%m/%Y")


def ticket_row(
    number: int,
    created: datetime,
    *,
    title: str | None = None,
    closed: datetime | None = None,
    status: str = "En cours",
    type_: str = "Incident",
    priority: str = "Normale",
    requester: str = "Élise Dupont",
    email: str = "elise.dupont@boulangerie.example",
    customer: str = "Boulangerie Dupont",
    technician: str = "",
    description: str = "",
) -> list[str]:
    return [
        str(number),
        title or f"Ligne coupée n° {number}",
        french(created),
        french(closed) if closed else "",
        status,
        type_,
        priority,
        requester,
        email,
        customer,
        technician,
        description,
    ]


def write_csv(
    path: Path, headers: list[str], rows: Iterable[list[Any]], *, encoding: str, delimiter: str
) -> Path:
    with open(path, "w", encoding=encoding, newline="") as stream:
        writer = csv.writer(stream, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL)
        writer.writerow(headers)
        writer.writerows(rows)
    return path


def write_xlsx(path: Path, headers: list[str], rows: Iterable[list[Any]]) -> Path:
    import openpyxl

    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("Export")
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


def bulk_export(
    tickets: int,
    messages_per_ticket: int,
    start_number: int = 1,
    start: datetime | None = None,
    customers: int = 2000,
    requesters: int = 20_000,
) -> tuple[Iterator[list[str]], Iterator[list[str]]]:
    """Rows of a large export (the benchmark): tickets over the years, ``customers`` customers (``Client <n>``) and
    ``requesters`` requesters (``contact<n>@client<m>.example``)."""
    start = start or datetime(2024, 1, 2, 8, 30)
    statuses = ["Résolu", "Fermé", "En cours", "En attente client", "Nouveau"]
    priorities = ["Normale", "Haute", "Basse", "Urgente"]
    types = ["Incident", "Demande d'information", "Facturation", "Demande de modification"]

    def ticket_rows() -> Iterator[list[str]]:
        for index in range(tickets):
            number = start_number + index
            created = start + timedelta(minutes=7 * index)
            status = statuses[index % len(statuses)]
            closed = created + timedelta(hours=3) if status in ("Résolu", "Fermé") else None
            yield ticket_row(
                number,
                created,
                closed=closed,
                status=status,
                type_=types[index % len(types)],
                priority=priorities[index % len(priorities)],
                requester=f"Contact {index % requesters}",
                email=f"contact{index % requesters}@client{index % requesters % customers}.example",
                customer=f"Client {index % requesters % customers}",
                description=f"Bonjour,\nle poste {index} ne sonne plus.\nMerci",
            )

    def message_rows() -> Iterator[list[str]]:
        for index in range(tickets):
            number = start_number + index
            created = start + timedelta(minutes=7 * index)
            for position in range(messages_per_ticket):
                staff = position % 2 == 0
                yield [
                    str(number),
                    french(created + timedelta(minutes=10 * (position + 1))),
                    "Support A6" if staff else f"Contact {index % requesters}",
                    ""
                    if staff
                    else f"contact{index % requesters}@client{index % requesters % customers}.example",
                    f"Réponse {position + 1} au ticket {number} : nous regardons, à bientôt.",
                    "Oui" if position == messages_per_ticket - 1 else "Non",
                ]

    return ticket_rows(), message_rows()
