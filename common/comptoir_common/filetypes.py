"""What a file is, decided from its first bytes — never from its name or the uploader's claim.

Two policies over one table of signatures:

- :func:`sniff` / :func:`sniff_stream` (wiki): only the kinds listed in :data:`ACCEPTED_TYPES`; anything else, SVG
  and HTML included (both can carry script), is None and the caller refuses it.
- :func:`content_type_of` (ticket attachments): every file is accepted and labelled; what is not recognised is
  ``application/octet-stream``, and markup is plain text so that it is never served as something a browser runs.
"""

from __future__ import annotations

import zipfile
from typing import BinaryIO

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})

ZIP = "application/zip"
OLE_STORAGE = "application/x-ole-storage"  # legacy .doc / .xls / .msg
TEXT = "text/plain"
UNKNOWN = "application/octet-stream"

# (type, {offset: bytes expected there}); the first match wins.
_SIGNATURES: tuple[tuple[str, dict[int, bytes]], ...] = (
    ("image/webp", {0: b"RIFF", 8: b"WEBP"}),
    ("video/mp4", {4: b"ftyp"}),
    ("image/png", {0: b"\x89PNG\r\n\x1a\n"}),
    ("image/jpeg", {0: b"\xff\xd8\xff"}),
    ("image/gif", {0: b"GIF87a"}),
    ("image/gif", {0: b"GIF89a"}),
    ("image/bmp", {0: b"BM"}),
    ("image/tiff", {0: b"II*\x00"}),
    ("image/tiff", {0: b"MM\x00*"}),
    ("application/pdf", {0: b"%PDF-"}),
    (ZIP, {0: b"PK\x03\x04"}),
    ("application/gzip", {0: b"\x1f\x8b"}),
    ("application/vnd.rar", {0: b"Rar!\x1a\x07"}),
    ("application/x-7z-compressed", {0: b"7z\xbc\xaf\x27\x1c"}),
    (OLE_STORAGE, {0: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"}),
    ("audio/ogg", {0: b"OggS"}),
    ("audio/mpeg", {0: b"ID3"}),
)
ACCEPTED_TYPES = IMAGE_TYPES | {"application/pdf", ZIP, OLE_STORAGE}

_OFFICE_BY_ZIP_ENTRY = (
    ("word/", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("xl/", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("ppt/", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
)
_ZIP_BY_EXTENSION = {
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
}
_OLE_BY_EXTENSION = {
    ".doc": "application/msword",
    ".xls": "application/vnd.ms-excel",
    ".msg": "application/vnd.ms-outlook",
}
_MARKUP_STARTS = ("<!doctype", "<html", "<svg", "<?xml", "<script")
SNIFF_BYTES = 8192


def _signature_type(head: bytes, types: frozenset[str] | None = None) -> str | None:
    """The first signature ``head`` matches, among ``types`` (all when None)."""
    for content_type, parts in _SIGNATURES:
        if types is not None and content_type not in types:
            continue
        if all(head[offset : offset + len(expected)] == expected for offset, expected in parts.items()):
            return content_type
    return None


def _utf8_text(head: bytes) -> str | None:
    """``head`` decoded if it is UTF-8 text without NUL bytes, else None."""
    if b"\x00" in head:
        return None
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still text.
        if exc.start < len(head) - 3:
            return None
        return head[: exc.start].decode("utf-8")


def sniff(head: bytes) -> str | None:
    """The MIME type of a file starting with ``head`` (its first bytes), or None if not an accepted kind."""
    kind = _signature_type(head, ACCEPTED_TYPES)
    if kind is not None:
        return kind
    text = _utf8_text(head)
    # Markup a browser would interpret is not "plain text", whatever its name says.
    if head and text is not None and not text.lstrip().lower().startswith(_MARKUP_STARTS):
        return TEXT
    return None


def sniff_stream(stream: BinaryIO) -> str | None:
    """Like :func:`sniff` for a seekable stream; a ZIP is looked into to recognise office documents."""
    head = stream.read(SNIFF_BYTES)
    kind = sniff(head)
    if kind == ZIP:
        stream.seek(0)
        try:
            names = zipfile.ZipFile(stream).namelist()
        except zipfile.BadZipFile:
            return None
        if "mimetype" in names:
            return "application/vnd.oasis.opendocument"
        for prefix, office_type in _OFFICE_BY_ZIP_ENTRY:
            if any(name.startswith(prefix) for name in names):
                return office_type
    return kind


def content_type_of(head: bytes, filename: str = "") -> str:
    """The type to store for any file starting with ``head``: zip and OLE containers are told apart by the
    extension of ``filename``, UTF-8 text (markup included) is ``text/plain``, the rest ``application/octet-stream``."""
    extension = ("." + filename.rsplit(".", 1)[-1].lower()) if "." in filename else ""
    kind = _signature_type(head)
    if kind == ZIP:
        return _ZIP_BY_EXTENSION.get(extension, ZIP)
    if kind == OLE_STORAGE:
        return _OLE_BY_EXTENSION.get(extension, UNKNOWN)
    if kind is not None:
        return kind
    return TEXT if _utf8_text(head) is not None else UNKNOWN
