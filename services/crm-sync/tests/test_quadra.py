"""Quadra imports: the ASCII export (fixed width, Windows-1252, CRLF) and mdb-export's CSV of ``Comptes``."""

from __future__ import annotations

import uuid

import pytest
from comptoir_common.errors import InvalidInput, PermissionDenied
from comptoir_crm_sync import directory, quadra
from comptoir_crm_sync.models import Customer, OutboxMessage
from comptoir_crm_sync.settings import QuadraLayout
from sqlalchemy import select

ADMIN = {"id": str(uuid.uuid4()), "role": "admin", "name": "Ada"}


def account_line(
    number: str,
    label: str,
    *,
    kind: str = "C",
    collective: str = "41100000",
    street="",
    postal="",
    city="",
    alpha="",
    width=218,
) -> str:
    line = "C" + number.ljust(8)[:8] + label.ljust(30)[:30] + alpha.ljust(7)[:7]
    zone = street.ljust(32)[:32] + postal.ljust(5)[:5] + city.ljust(15)[:15]
    line += zone + collective.ljust(8)[:8] + " " * 110 + " " + kind
    return line[:width]


def export(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


def movement(account: str) -> str:
    return (
        "M"
        + account.ljust(8)
        + "VE"
        + "000"
        + "281126"
        + " " * 20
        + "Facture 1234".ljust(20)
        + "D"
        + "+000000012000"
    )


SAMPLE = export(
    account_line(
        "411DUPON", "Boulangerie Dupont", street="3 rue Mercière", postal="69002", city="Lyon", alpha="DUPONT"
    ),
    movement("411DUPON"),
    account_line("411ELOIS", "Éloïse & Fils — Crèmerie", city="Bron"),
    "I" + " " * 40,
    account_line("401FOURN", "Fournisseur Télécom", kind="F", collective="40100000"),
    account_line("60610000", "Achats fournitures", kind="G", collective=""),
    account_line("411VIDE0", ""),
    account_line("411COURT", "Ligne courte", width=120),
)


def _customers(session):
    rows = session.scalars(select(Customer).where(Customer.source == "quadra")).all()
    return {c.external_key: c for c in rows}


def test_ascii_export_with_accents_odd_widths_empty_labels_and_movements():
    parsed = quadra.parse(SAMPLE)
    assert parsed.format == "ascii"
    by_number = {a.number: a for a in parsed.accounts}
    assert set(by_number) == {"411DUPON", "411ELOIS", "411VIDE0", "411COURT"}
    assert by_number["411ELOIS"].name == "Éloïse & Fils — Crèmerie"
    assert by_number["411DUPON"].address == {
        "street": "3 rue Mercière",
        "postal_code": "69002",
        "city": "Lyon",
    }
    assert by_number["411DUPON"].extra["cle_alpha"] == "DUPONT"
    assert by_number["411VIDE0"].name == "Compte 411VIDE0"
    assert by_number["411COURT"].name == "Ligne courte"  # short line: padded, type from the 411 collective
    assert parsed.skipped == {"lignes M": 1, "lignes I": 1, "comptes de type F": 1, "comptes de type G": 1}
    assert any("sans intitulé" in problem for _, problem in parsed.problems)


def test_positions_are_configurable():
    line = "C" + "411ABC  " + "Société décalée".ljust(30) + " " * 7 + "Z" * 52 + "41100000" + " " * 111 + "C"
    layout = QuadraLayout(street=(47, 10), postal_code=(57, 0), city=(57, 0))
    parsed = quadra.parse_ascii(export(line), layout)
    assert parsed.accounts[0].address == {"street": "ZZZZZZZZZZ"}


def test_import_twice_changes_nothing_and_missing_customers_are_deactivated(session):
    first = quadra.import_file(session, SAMPLE, actor=ADMIN, filename="export.txt")
    assert (first.created, first.updated, first.unchanged, first.deactivated) == (4, 0, 0, 0)
    mark = session.scalar(select(OutboxMessage.seq).order_by(OutboxMessage.seq.desc()).limit(1))
    again = quadra.import_file(session, SAMPLE, actor=ADMIN, filename="export.txt")
    assert (again.created, again.updated, again.unchanged, again.deactivated) == (0, 0, 4, 0)
    assert session.scalars(select(OutboxMessage).where(OutboxMessage.seq > mark)).all() == []

    smaller = export(
        account_line(
            "411DUPON",
            "Boulangerie Dupont SARL",
            street="3 rue Mercière",
            postal="69002",
            city="Lyon",
            alpha="DUPONT",
        )
    )
    third = quadra.import_file(session, smaller, actor=ADMIN, filename="export2.txt")
    assert (third.updated, third.deactivated) == (1, 3)
    customers = _customers(session)
    assert len(customers) == 4 and customers["411DUPON"].active and not customers["411ELOIS"].active
    assert customers["411DUPON"].name == "Boulangerie Dupont SARL"


def test_mdb_export_csv(session, tmp_path):
    csv_text = (
        "Numero,Type,Intitule,Collectif,CompteInactif,Adresse1,CodePostal,Ville,Telephone,Email,Siret\n"
        '"411MART","C","Garage Martin","41100000",0,"12 av. Jean Jaurès","69007","Lyon","0478000000","contact@garage-martin.fr","12345678900012"\n'
        '"411OLD","C","Ancien client","41100000",1,,,,,,\n'
        '"401F","F","Fournisseur","40100000",0,,,,,,\n'
        '"411NEW","C","","41100000",0,,,,,,\n'
    )
    report = quadra.import_file(session, csv_text.encode(), actor=ADMIN, filename="Comptes.csv")
    assert report.format == "csv" and report.created == 3 and report.skipped == {"comptes de type F": 1}
    customers = _customers(session)
    martin = customers["411MART"]
    assert martin.extra == {"Siret": "12345678900012", "Collectif": "41100000"}
    assert martin.addresses == [{"street": "12 av. Jean Jaurès", "postal_code": "69007", "city": "Lyon"}]
    assert not customers["411OLD"].active and customers["411NEW"].name == "Compte 411NEW"
    assert directory.find_by_email(session, "CONTACT@garage-martin.fr")["customer"]["id"] == martin.id


def test_rejections_and_rights(session):
    with pytest.raises(PermissionDenied):
        quadra.import_file(session, SAMPLE, actor={"id": "x", "role": "agent"})
    with pytest.raises(InvalidInput, match="pas un export Quadra"):
        quadra.import_file(session, b"%PDF-1.4 not an export", actor=ADMIN)
    with pytest.raises(InvalidInput, match="Aucun compte client"):
        quadra.import_file(session, export(movement("411X")), actor=ADMIN)
    assert _customers(session) == {}


def test_command_line_import_twice(sync_database, tmp_path, monkeypatch, capsys):
    from comptoir_dev.cli import main

    monkeypatch.setenv("CRM_SYNC_DATABASE_URL", sync_database.url.render_as_string(hide_password=False))
    from .conftest import empty_tables

    empty_tables(sync_database)
    path = tmp_path / "EXPORT.TXT"
    path.write_bytes(SAMPLE)
    assert main(["import", "quadra", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "créés : 4" in out and "ignorés, lignes M : 1" in out and "100%" in err
    assert main(["import", "quadra", str(path)]) == 0
    out, _ = capsys.readouterr()
    assert "créés : 0" in out and "inchangés : 4" in out
    path.write_bytes(b"\x89PNG\r\n\x1a\n")
    assert main(["import", "quadra", str(path)]) == 2
    assert "pas un export Quadra" in capsys.readouterr().err
    assert main(["import", "quadra", str(tmp_path / "absent.txt")]) == 2
