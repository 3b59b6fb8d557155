"""Attachments: the type decided by the content (magic bytes), image previews, references into the blob store.

The gateway streams uploads into the shared blob store and passes ``{blob_key, filename, size}``; this module checks
the blob, reads its first bytes to decide the type with ``comptoir_common.filetypes.content_type_of`` (every file is
accepted; the name and the browser's claim are not trusted) and makes a thumbnail for images.
"""

from __future__ import annotations

import io
import re
import unicodedata
from typing import Any

from comptoir_common import filetypes
from comptoir_common.blobs import BlobStore
from comptoir_common.errors import InvalidInput, PayloadTooLarge

from comptoir_tickets.models import Attachment

THUMBNAIL_SIZE = (320, 320)
# Images larger than this are not decoded for a preview (decompression bombs).
MAX_PREVIEW_PIXELS = 60_000_000

PREVIEWABLE = filetypes.IMAGE_TYPES | {"image/bmp"}


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
    content_type = filetypes.content_type_of(head, filename)
    thumbnail = make_thumbnail(store, key) if content_type in PREVIEWABLE else None
    return Attachment(
        filename=filename,
        content_type=content_type,
        size=size,
        blob_key=key,
        thumbnail_key=thumbnail,
    )
