"""The two policies of comptoir_common.filetypes over one signature table: the wiki's (known kinds only, markup
refused) and the ticket attachments' (everything labelled, markup as plain text)."""

from __future__ import annotations

import io
import zipfile

import pytest
from comptoir_common.filetypes import content_type_of, sniff, sniff_stream

ZIP = b"PK\x03\x04" + b"\x00" * 26
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 32


@pytest.mark.parametrize(
    ("head", "wiki", "tickets"),
    [
        (b"\x89PNG\r\n\x1a\n\x00", "image/png", "image/png"),
        (b"\xff\xd8\xff\xe0", "image/jpeg", "image/jpeg"),
        (b"GIF89a....", "image/gif", "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp", "image/webp"),
        (b"%PDF-1.7", "application/pdf", "application/pdf"),
        (ZIP, "application/zip", "application/zip"),
        (OLE, "application/x-ole-storage", "application/octet-stream"),
        (b"Compte rendu d'intervention", "text/plain", "text/plain"),
        ("é".encode()[:1], "text/plain", "text/plain"),  # a character cut at the end of the sample
        (b"<!DOCTYPE html><p>", None, "text/plain"),
        (b"  <svg onload='x()'>", None, "text/plain"),
        (b"", None, "text/plain"),
        (b"BM\x00\x00", None, "image/bmp"),
        (b"\x1f\x8b\x08\x00", None, "application/gzip"),
        (b"\x00\x00\x00\x18ftypmp42", None, "video/mp4"),
        (b"\x00\x01binary", None, "application/octet-stream"),
    ],
)
def test_each_policy_types_the_same_bytes(head, wiki, tickets):
    assert sniff(head) == wiki
    assert content_type_of(head) == tickets


def test_wiki_keeps_bmp_shaped_text_as_text():
    """Only the accepted kinds' signatures count for the wiki: text that happens to start with "BM" is text."""
    assert sniff(b"BMW en panne") == "text/plain"
    assert content_type_of(b"BMW en panne") == "image/bmp"


@pytest.mark.parametrize(
    ("head", "filename", "expected"),
    [
        (ZIP, "devis.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        (ZIP, "Tableau.ODS", "application/vnd.oasis.opendocument.spreadsheet"),
        (ZIP, "photos.zip", "application/zip"),
        (OLE, "ancien.xls", "application/vnd.ms-excel"),
        (OLE, "courriel.msg", "application/vnd.ms-outlook"),
        (b"%PDF-1.4", "faux.docx", "application/pdf"),  # the extension only names a container
    ],
)
def test_attachment_containers_are_named_by_extension(head, filename, expected):
    assert content_type_of(head, filename) == expected


def test_wiki_looks_inside_a_zip_for_office_documents():
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("word/document.xml", "<w:document/>")
    archive.seek(0)
    assert sniff_stream(archive) == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    assert sniff_stream(io.BytesIO(ZIP)) is None  # not a readable archive
