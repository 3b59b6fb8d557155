"""Attachments are typed from their bytes; the three-way merge on its own."""

from __future__ import annotations

import io
import zipfile

import pytest
from comptoir_common.blobs import DirectoryBlobStore
from comptoir_common.errors import InvalidInput, NotFound, PayloadTooLarge, PermissionDenied
from comptoir_common.filetypes import sniff
from comptoir_wiki import attachments, merging, pages

CUSTOMER_A = "00000000-0000-4000-8000-0000000000aa"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def page(session, actors):
    return pages.create_page(session, actor=actors["agent"], title="Schémas", customer_id=CUSTOMER_A)


def _attach(session, actor, blobs, page, data: bytes, filename: str, max_size: int = 10_000):
    key = blobs.put_bytes(data).key
    return attachments.add_attachment(
        session, actor=actor, blobs=blobs, page_id=page.id, blob_key=key, filename=filename, max_size=max_size
    )


def test_type_comes_from_the_bytes_not_the_name(session, actors, page, tmp_path):
    blobs = DirectoryBlobStore(tmp_path)
    image = _attach(session, actors["agent"], blobs, page, PNG, "schema.pdf")
    assert image.content_type == "image/png"
    text = _attach(session, actors["agent"], blobs, page, "Procédure\n".encode(), "notes.png")
    assert text.content_type == "text/plain"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w/>")
    document = _attach(session, actors["agent"], blobs, page, buffer.getvalue(), "offre.docx")
    assert document.content_type.endswith("wordprocessingml.document")
    pasted = _attach(session, actors["agent"], blobs, page, PNG + b"1", "")
    assert pasted.filename == "image.png"


@pytest.mark.parametrize(
    "data",
    [
        b"<html><script>alert(1)</script></html>",
        b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
        b"\x00\x01\x02binary",
        b"MZ\x90\x00\x03\x00\x00\x00",
    ],
)
def test_unknown_or_scriptable_types_are_refused(session, actors, page, tmp_path, data):
    with pytest.raises(InvalidInput, match="Type de fichier non accepté"):
        _attach(session, actors["agent"], DirectoryBlobStore(tmp_path), page, data, "photo.png")


def test_size_limit_and_rights(session, actors, page, tmp_path):
    blobs = DirectoryBlobStore(tmp_path)
    with pytest.raises(PayloadTooLarge):
        _attach(session, actors["agent"], blobs, page, PNG * 100, "gros.png", max_size=100)
    with pytest.raises(NotFound):
        _attach(session, actors["other_sales"], blobs, page, PNG, "x.png")
    pages.update_page(
        session, actor=actors["agent"], page_id=page.id, base_revision=1, visible_to_customer=True
    )
    with pytest.raises(PermissionDenied):  # a client reads the page but never changes it
        _attach(session, actors["client_a"], blobs, page, PNG, "x.png")


def test_sniff_basics():
    assert sniff(b"%PDF-1.7") == "application/pdf"
    assert sniff(b"GIF89a....") == "image/gif"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff("é".encode()[:1]) == "text/plain"  # a character cut at the end of the sample
    assert sniff(b"<!DOCTYPE html><p>") is None


def test_merge_takes_each_side_where_only_it_changed():
    base = "1\n2\n3\n4\n5\n6"
    result = merging.merge3(base, "1\nDEUX\n3\n4\n5\n6", "1\n2\n3\n4\nCINQ\n6\n7")
    assert result == {
        "text": "1\nDEUX\n3\n4\nCINQ\n6\n7",
        "conflicts": 0,
        "chunks": [
            {"kind": "same", "lines": ["1"]},
            {"kind": "mine", "lines": ["DEUX"]},
            {"kind": "same", "lines": ["3", "4"]},
            {"kind": "theirs", "lines": ["CINQ"]},
            {"kind": "same", "lines": ["6"]},
            {"kind": "theirs", "lines": ["7"]},
        ],
    }


def test_merge_of_identical_changes_is_not_a_conflict():
    assert merging.merge3("a\nb", "a\nB", "a\nB") == {
        "text": "a\nB",
        "conflicts": 0,
        "chunks": [{"kind": "same", "lines": ["a"]}, {"kind": "same", "lines": ["B"]}],
    }


def test_merge_marks_overlapping_changes():
    result = merging.merge3("a\nb\nc", "a\nX\nc", "a\nY\nc")
    assert result["conflicts"] == 1
    assert result["text"].split("\n") == [
        "a",
        merging.MINE_MARKER,
        "X",
        merging.SEPARATOR,
        "Y",
        merging.THEIRS_MARKER,
        "c",
    ]
