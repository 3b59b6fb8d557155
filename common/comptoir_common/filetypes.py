"""What a file is, decided from its first bytes — never from its name or the uploader's claim.

Uploads are checked by content: a service stores the type this module finds and refuses what it does not know.
SVG and HTML are deliberately absent: both can carry script.
"""

from __future__ import annotations

import zipfile
from typing import BinaryIO

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})

_OFFICE_BY_ZIP_ENTRY = (
    ("word/", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("xl/", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("ppt/", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
)
SNIFF_BYTES = 8192


def sniff(head: bytes) -> str | None:
    """The MIME type of a file starting with ``head`` (its first bytes), or None if not an accepted kind."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"PK\x03\x04"):
        return "application/zip"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "application/x-ole-storage"  # legacy .doc / .xls
    if _looks_like_text(head):
        return "text/plain"
    return None


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still text.
        if exc.start < len(head) - 3:
            return False
        text = head[: exc.start].decode("utf-8")
    lowered = text.lstrip().lower()
    # Markup a browser would interpret is not "plain text", whatever its name says.
    return not lowered.startswith(("<!doctype", "<html", "<svg", "<?xml", "<script"))


def sniff_stream(stream: BinaryIO) -> str | None:
    """Like :func:`sniff` for a seekable stream; a ZIP is looked into to recognise office documents."""
    head = stream.read(SNIFF_BYTES)
    kind = sniff(head)
    if kind == "application/zip":
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
