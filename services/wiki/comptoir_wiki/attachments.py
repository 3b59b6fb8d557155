"""Attachments and pasted images of a page: bytes in the blob store, type decided from the bytes."""

from __future__ import annotations

import re
from typing import Any

from comptoir_common.blobs import BlobStore
from comptoir_common.db import utcnow
from comptoir_common.errors import InvalidInput, NotFound, PayloadTooLarge, PermissionDenied
from comptoir_common.filetypes import sniff_stream
from sqlalchemy.orm import Session

from comptoir_wiki import pages, policy
from comptoir_wiki.models import Attachment, Page

MAX_FILENAME_LENGTH = 255


def clean_filename(filename: str | None, content_type: str) -> str:
    """A name safe to show and to put in a Content-Disposition header."""
    name = re.sub(r"[\x00-\x1f\x7f/\\\"]", "", (filename or "").strip()).strip(". ")
    if not name:
        extension = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp"}
        name = "image" + extension.get(content_type, "") if content_type.startswith("image/") else "fichier"
    return name[-MAX_FILENAME_LENGTH:]


def add_attachment(
    session: Session,
    *,
    actor: dict[str, Any],
    blobs: BlobStore,
    page_id: str,
    blob_key: str,
    filename: str | None,
    max_size: int,
) -> Attachment:
    """Attach the blob ``blob_key`` (already stored by the gateway) to a page, after checking what it is."""
    page: Page = pages.get_page(session, actor=actor, page_id=page_id)
    if not policy.can_write_for(session, actor, page.customer_id):
        raise PermissionDenied("Vous ne pouvez pas ajouter de fichier à cette page.")
    try:
        if not blobs.exists(blob_key):
            raise InvalidInput("Fichier introuvable dans le stockage.")
        with blobs.open(blob_key) as stream:
            stream.seek(0, 2)
            size = stream.tell()
            stream.seek(0)
            content_type = sniff_stream(stream)
    except ValueError as exc:
        raise InvalidInput("Référence de fichier invalide.") from exc
    if size > max_size:
        raise PayloadTooLarge(f"Le fichier dépasse la taille maximale ({max_size // (1024 * 1024)} Mo).")
    if size == 0:
        raise InvalidInput("Le fichier est vide.")
    if content_type is None:
        raise InvalidInput(
            "Type de fichier non accepté. Formats acceptés : images (PNG, JPEG, GIF, WebP), PDF, texte, "
            "documents bureautiques."
        )
    attachment = Attachment(
        page_id=page.id,
        blob_key=blob_key,
        filename=clean_filename(filename, content_type),
        content_type=content_type,
        size=size,
        uploaded_by_id=actor["id"],
        uploaded_by_name=actor.get("name"),
        created_at=utcnow(),
    )
    session.add(attachment)
    session.flush()
    return attachment


def get_attachment(session: Session, *, actor: dict[str, Any], attachment_id: str) -> dict[str, Any]:
    """An attachment's metadata and blob key, if ``actor`` may read its page."""
    attachment = session.get(Attachment, str(attachment_id)) if len(str(attachment_id)) <= 36 else None
    if attachment is None:
        raise NotFound("Fichier introuvable.")
    try:
        pages.get_page(session, actor=actor, page_id=attachment.page_id)
    except NotFound as exc:
        raise NotFound("Fichier introuvable.") from exc
    return pages.attachment_to_dict(attachment) | {"blob_key": attachment.blob_key}
