"""Ticket attachments: every file is accepted, typed by its bytes (the name only tells zip and OLE containers apart),
markup is kept as plain text, images get a preview, and the refusals are about missing or oversized blobs only."""

from __future__ import annotations

import io

import pytest
from comptoir_common.errors import InvalidInput, PayloadTooLarge
from comptoir_tickets.attachments import make_attachment

MB = 1024 * 1024
ZIP = b"PK\x03\x04" + b"\x00" * 26
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 32


def png() -> bytes:
    from PIL import Image

    output = io.BytesIO()
    Image.new("RGBA", (640, 480), (200, 30, 30, 128)).save(output, format="PNG")
    return output.getvalue()


@pytest.mark.parametrize(
    ("content", "filename", "expected"),
    [
        (b"\xff\xd8\xff\xe0" + b"\x00" * 16, "photo.jpg", "image/jpeg"),
        (b"GIF87a" + b"\x00" * 8, "a.gif", "image/gif"),
        (b"GIF89a" + b"\x00" * 8, "a.gif", "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "a.webp", "image/webp"),
        (b"BM" + b"\x00" * 16, "a.bmp", "image/bmp"),
        (b"II*\x00" + b"\x00" * 8, "scan.tif", "image/tiff"),
        (b"MM\x00*" + b"\x00" * 8, "scan.tif", "image/tiff"),
        (b"%PDF-1.7\n", "facture.pdf", "application/pdf"),
        (b"%PDF-1.7\n", "facture.txt", "application/pdf"),  # the name does not decide
        (ZIP, "archive.zip", "application/zip"),
        (ZIP, "Devis.DOCX", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        (ZIP, "t.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (ZIP, "t.pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
        (ZIP, "t.odt", "application/vnd.oasis.opendocument.text"),
        (ZIP, "t.ods", "application/vnd.oasis.opendocument.spreadsheet"),
        (ZIP, "t.pdf", "application/zip"),
        (OLE, "ancien.doc", "application/msword"),
        (OLE, "ancien.xls", "application/vnd.ms-excel"),
        (OLE, "courriel.msg", "application/vnd.ms-outlook"),
        (OLE, "inconnu.bin", "application/octet-stream"),
        (OLE, "sans-extension", "application/octet-stream"),
        (b"\x1f\x8b\x08\x00" + b"\x00" * 8, "logs.tar.gz", "application/gzip"),
        (b"Rar!\x1a\x07\x00" + b"\x00" * 8, "a.rar", "application/vnd.rar"),
        (b"7z\xbc\xaf\x27\x1c" + b"\x00" * 8, "a.7z", "application/x-7z-compressed"),
        (b"OggS" + b"\x00" * 8, "message.ogg", "audio/ogg"),
        (b"ID3\x03" + b"\x00" * 8, "message.mp3", "audio/mpeg"),
        (b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 8, "video.mp4", "video/mp4"),
        ("Bonjour, voici le journal : état OK\n".encode(), "journal.log", "text/plain"),
        ("é".encode()[:1], "coupé.txt", "text/plain"),  # a character cut at the end of the sample
        (b"", "vide.txt", "text/plain"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "a.svg", "text/plain"),
        (b"<!DOCTYPE html><html><script>alert(1)</script>", "page.html", "text/plain"),
        (b"\x00\x01\x02\x03binary", "firmware.bin", "application/octet-stream"),
        (b"\xff\xfe\xfa\x00\x00", "x.dat", "application/octet-stream"),
    ],
)
def test_attachment_is_typed_by_its_content(blobs, content, filename, expected):
    stored = blobs.put_bytes(content)
    attachment = make_attachment(blobs, {"blob_key": stored.key, "filename": filename}, limit=MB)
    assert attachment.content_type == expected
    assert attachment.size == len(content) and attachment.blob_key == stored.key
    assert attachment.thumbnail_key is None


def test_image_gets_a_jpeg_preview_whatever_its_name(blobs):
    stored = blobs.put_bytes(png())
    attachment = make_attachment(blobs, {"blob_key": stored.key, "filename": "capture.pdf"}, limit=MB)
    assert attachment.content_type == "image/png"
    with blobs.open(attachment.thumbnail_key) as preview:
        assert preview.read(3) == b"\xff\xd8\xff"


def test_undecodable_image_has_no_preview(blobs):
    stored = blobs.put_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    attachment = make_attachment(blobs, {"blob_key": stored.key, "filename": "cassee.png"}, limit=MB)
    assert attachment.content_type == "image/png" and attachment.thumbnail_key is None


def test_file_name_is_cleaned(blobs):
    stored = blobs.put_bytes(b"texte")
    attachment = make_attachment(
        blobs, {"blob_key": stored.key, "filename": '..\\dossier/"note"\x07.txt'}, limit=MB
    )
    assert attachment.filename == "note.txt"
    nameless = make_attachment(blobs, {"blob_key": stored.key}, limit=MB)
    assert nameless.filename == "fichier"


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (None, "Pièce jointe invalide."),
        ({"filename": "a.txt"}, "Pièce jointe invalide."),
        ({"blob_key": 42}, "Pièce jointe invalide."),
        ({"blob_key": "0" * 64}, "Pièce jointe introuvable : renvoyez le fichier."),
        ({"blob_key": "../../etc/passwd"}, "Pièce jointe introuvable : renvoyez le fichier."),
    ],
)
def test_missing_or_malformed_blob_is_refused(blobs, item, message):
    with pytest.raises(InvalidInput) as refused:
        make_attachment(blobs, item, limit=MB)
    assert str(refused.value) == message


def test_file_over_the_limit_is_refused(blobs):
    stored = blobs.put_bytes(b"x" * (2 * MB + 1))
    with pytest.raises(PayloadTooLarge) as refused:
        make_attachment(blobs, {"blob_key": stored.key, "filename": "gros.txt"}, limit=2 * MB)
    assert str(refused.value) == "Le fichier dépasse la taille maximale autorisée (2 Mo)."
