"""Reading Simplydesk exports: encodings, separators, Excel, French dates, multi-line cells, duplicates, mapping."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from comptoir_common.ticket_import import ExportReader, ImportFileError, Mapping, parse_date
from comptoir_testing.simplydesk_export import (
    MESSAGE_HEADERS,
    TICKET_HEADERS,
    ticket_row,
    write_csv,
    write_xlsx,
)

CREATED = datetime(2025, 3, 14, 9, 5)


def _rows():
    return [
        ticket_row(101, CREATED, description="Plus de tonalité.\nDepuis 9 h ; urgent", status="Résolu",
                   closed=datetime(2025, 3, 14, 16, 40)),
        ticket_row(102, CREATED, customer="Société Générale d'Électricité", requester="Noël Lefèvre",
                   email="Noel.Lefevre@SGE.example", priority="Haute", status="En attente"),
        ticket_row(102, CREATED),  # duplicate
        ["abc", "Sans numéro", "14/03/2025", "", "", "", "", "", "", "", "", ""],
        ticket_row(103, CREATED)[:2] + ["31/02/2025"] + ticket_row(103, CREATED)[3:],
    ]  # fmt: skip


def _messages():
    return [
        ["101", "14/03/2025 10:15", "Support A6", "support@a6.example", "Nous regardons.\nÀ suivre", "Non"],
        ["101", "14/03/2025 09:30", "Élise Dupont", "elise@x.example", "Merci d'avance", "Non"],
        ["101", "14/03/2025 11:00", "Hugo", "", "Carte réseau changée", "Oui"],
        ["101", "14/03/2025 11:00", "Hugo", "", "Carte réseau changée", "Oui"],  # duplicate
        ["999", "14/03/2025 11:00", "Hugo", "", "Ticket absent", "Non"],
    ]


def _read(tickets, messages=None, mapping=None):
    with ExportReader(tickets, messages, mapping or Mapping()) as reader:
        batches = list(reader.tickets(batch_size=2))
        return [t for batch in batches for t in batch], reader


@pytest.mark.parametrize(
    ("encoding", "delimiter"), [("cp1252", ";"), ("utf-8-sig", ","), ("utf-8", ";"), ("utf-8", "\t")]
)
def test_csv_in_every_french_encoding_and_separator(tmp_path, encoding, delimiter):
    tickets = write_csv(tmp_path / "t.csv", TICKET_HEADERS, _rows(), encoding=encoding, delimiter=delimiter)
    messages = write_csv(
        tmp_path / "m.csv", MESSAGE_HEADERS, _messages(), encoding=encoding, delimiter=delimiter
    )
    found, reader = _read(tickets, messages)
    assert [t["number"] for t in found] == [101, 102]
    first, second = found
    assert first["status"] == "closed" and first["closed_at"] == "2025-03-14T15:40:00+00:00"
    assert first["created_at"] == "2025-03-14T08:05:00+00:00"  # Paris winter time
    # Description first, then the messages file's in date order; multi-line cells kept.
    bodies = [m["body"] for m in first["messages"]]
    assert bodies == ["Plus de tonalité.\nDepuis 9 h ; urgent", "Merci d'avance", "Nous regardons.\nÀ suivre",
                      "Carte réseau changée"]  # fmt: skip
    assert first["messages"][-1]["internal"] is True
    assert second["customer"] == "Société Générale d'Électricité"
    assert second["requester_email"] == "noel.lefevre@sge.example"
    assert second["priority"] == "high" and second["status"] == "pending"
    reasons = {(r.number, r.reason.split(" (")[0]) for r in reader.rejected}
    assert (102, "ticket en double") in reasons
    assert (None, "numéro de ticket invalide « abc »") in reasons
    assert any(r.number == 103 and "date" in r.reason for r in reader.rejected)
    assert any(r.number == 101 and r.reason == "message en double" for r in reader.rejected)
    assert any(r.number == 999 and "absent" in r.reason for r in reader.rejected)


def test_excel_export_with_real_dates(tmp_path):
    rows = _rows()[:2]
    rows[0][2] = datetime(2025, 7, 1, 14, 5)  # an Excel date cell, Paris summer time
    tickets = write_xlsx(tmp_path / "t.xlsx", TICKET_HEADERS, rows)
    messages = write_xlsx(tmp_path / "m.xlsx", MESSAGE_HEADERS, _messages()[:2])
    found, reader = _read(tickets, messages)
    assert [t["number"] for t in found] == [101, 102]
    assert found[0]["created_at"] == "2025-07-01T12:05:00+00:00"
    assert len(found[0]["messages"]) == 3
    assert not reader.rejected


def test_missing_columns_and_custom_mapping(tmp_path):
    headers = ["Ref. demande", "Objet", "Ouvert le", "Etat"]
    tickets = write_csv(
        tmp_path / "t.csv", headers, [["T-77", "Fax HS", "2025-03-14 09:05", "Clôturé"]], encoding="utf-8",
        delimiter=";",
    )  # fmt: skip
    with pytest.raises(ImportFileError, match="number"):
        _read(tickets)
    mapping_file = tmp_path / "mapping.toml"
    mapping_file.write_text(
        '[tickets]\nnumber = "Ref. demande"\n[statuses]\n"Clôturé" = "closed"\n[options]\ntimezone = "UTC"\n',
        encoding="utf-8",
    )
    found, reader = _read(tickets, mapping=Mapping.load(mapping_file))
    assert found[0]["number"] == 77 and found[0]["status"] == "closed"
    assert found[0]["created_at"] == "2025-03-14T09:05:00+00:00"
    assert found[0]["messages"] == []
    assert any("requester_email" in w for w in reader.warnings)


def test_french_dates():
    assert parse_date("28/11/2026 14:05") == datetime(2026, 11, 28, 13, 5, tzinfo=UTC)
    assert parse_date("28/11/2026") == datetime(2026, 11, 27, 23, 0, tzinfo=UTC)
    assert parse_date("28/11/26 14h05") == datetime(2026, 11, 28, 13, 5, tzinfo=UTC)
    assert parse_date("2026-11-28T14:05:00+01:00") == datetime(2026, 11, 28, 13, 5, tzinfo=UTC)
    assert parse_date("") is None
    with pytest.raises(ValueError, match="illisible"):
        parse_date("hier")
    with pytest.raises(ImportFileError, match="Champ inconnu"):
        Mapping.from_dict({"tickets": {"couleur": "Couleur"}})
