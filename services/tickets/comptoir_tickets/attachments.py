"""Attachments: the type decided by the content (magic bytes), image previews, references into the blob store.

The gateway streams uploads into the shared blob store and passes ``{blob_key, filename, size}``; this module checks
the blob, reads its first bytes to decide the type (the name and the browser's claim are not trusted) and makes a
thumbnail for images.
"""

from __future__ import annotations

import io
import re
import unicodedata
from typing import Any

from comptoir_common.blobs import BlobStore
from comptoir_common.errors import InvalidInput, PayloadTooLarge

from comptoir_tickets.models import Attachment

THUMBNAIL_SIZE = (320, 320)
# Images larger than this are not decoded for a preview (decompression bombs).
MAX_PREVIEW_PIXELS = 60_000_000

_SIGNATURES: list[tuple[bytes, int, str]] = [
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"BM", 0, "image/bmp"),
    (b"II*\x00", 0, "image/tiff"),
    (b"MM\x00*", 0, "image/tiff"),
    (b"%PDF-", 0, "application/pdf"),
    (b"PK\x03\x04", 0, "application/zip"),
    (b"\x1f\x8b", 0, "application/gzip"),
    (b"Rar!\x1a\x07", 0, "application/vnd.rar"),
    (b"7z\xbc\xaf\x27\x1c", 0, "application/x-7z-compressed"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 0, "application/x-ole-storage"),
    (b"OggS", 0, "audio/ogg"),
    (b"ID3", 0, "audio/mpeg"),
]
_OOXML = {
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
}
_OLE = {
    ".doc": "application/msword",
    ".xls": "application/vnd.ms-excel",
    ".msg": "application/vnd.ms-outlook",
}
PREVIEWABLE = {"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"}


def sniff_content_type(head: bytes, filename: str = "") -> str:
    """The content type from the first bytes; containers (zip, OLE) are refined by the extension."""
    extension = ("." + filename.rsplit(".", 1)[-1].lower()) if "." in filename else ""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        return "video/mp4"
    for signature, offset, content_type in _SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            if content_type == "application/zip":
                return _OOXML.get(extension, content_type)
            if content_type == "application/x-ole-storage":
                return _OLE.get(extension, "application/octet-stream")
            return content_type
    if _looks_like_text(head):
        # SVG and HTML are text too, but served as such they could run script: kept as plain text.
        return "text/plain"
    return "application/octet-stream"


def _looks_like_text(head: bytes) -> bool:
    if not head:
        return True
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still text.
        return exc.start >= len(head) - 3


def safe_filename(name: Any) -> str:
    """A file name fit for a Content-Disposition header and a listing: no path, no control characters."""
    name = name if isinstance(name, str) else ""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = unicodedata.normalize("NFC", name)
    name = re.sub(r"[\x00-\x1f\x7f\"]", "", name).strip(" .")
    return name[:200] or "fichier"


def make_thumbnail(store: BlobStore, key: str) -> str | None:
    """A JPEG/PNG preview of an image blob, stored in the blob store; None if it cannot be decoded."""
    from PIL import Image

    try:
        with store.open(key) as stream:
            image = Image.open(stream)
            if image.width * image.height > MAX_PREVIEW_PIXELS:
                return None
            image.thumbnail(THUMBNAIL_SIZE)
            output = io.BytesIO()
            # Previews are always JPEG (transparency flattened on white): one type to serve.
            if image.mode in ("RGBA", "LA", "P"):
                rgba = image.convert("RGBA")
                flat = Image.new("RGB", rgba.size, (255, 255, 255))
                flat.paste(rgba, mask=rgba.split()[3])
                image = flat
            image.convert("RGB").save(output, format="JPEG", quality=80)
    except Exception:
        return None
    return store.put_bytes(output.getvalue()).key


def make_attachment(store: BlobStore, item: dict[str, Any], limit: int) -> Attachment:
    """An Attachment row (not yet added) for an uploaded blob, typed by its content, with a preview if an image."""
    if not isinstance(item, dict) or not isinstance(item.get("blob_key"), str):
        raise InvalidInput("Pièce jointe invalide.")
    key = item["blob_key"]
    try:
        exists = store.exists(key)
    except ValueError:
        exists = False
    if not exists:
        raise InvalidInput("Pièce jointe introuvable : renvoyez le fichier.")
    with store.open(key) as stream:
        head = stream.read(4096)
        stream.seek(0, io.SEEK_END)
        size = stream.tell()
    if size > limit:
        raise PayloadTooLarge(
            f"Le fichier dépasse la taille maximale autorisée ({limit // (1024 * 1024)} Mo)."
        )
    filename = safe_filename(item.get("filename"))
    content_type = sniff_content_type(head, filename)
    thumbnail = make_thumbnail(store, key) if content_type in PREVIEWABLE else None
    return Attachment(
        filename=filename,
        content_type=content_type,
        size=size,
        blob_key=key,
        thumbnail_key=thumbnail,
    )
