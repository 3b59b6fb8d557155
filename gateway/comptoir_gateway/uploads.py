"""Attachments through the gateway: uploads streamed into the shared blob store, downloads served with safe headers.

Starlette's multipart parser spools each file to a temporary file past 1 MB, so a large upload is never held whole
in memory; from there it is copied in chunks into the blob store, and stopped at the size limit. The tickets service
then decides the type from the content and checks who may see it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from comptoir_common.blobs import BlobTooLarge, DirectoryBlobStore
from fastapi import HTTPException, Request
from fastapi.responses import StreamingResponse
from starlette.datastructures import UploadFile

from comptoir_gateway.rpc import Services

MAX_FILES_PER_MESSAGE = 10
CHUNK = 256 * 1024


def blob_store(request: Request) -> DirectoryBlobStore:
    store = getattr(request.app.state, "blob_store", None)
    if store is None:
        store = DirectoryBlobStore(request.app.state.settings.blob_root)
        request.app.state.blob_store = store
    return store


def too_large_message(limit: int) -> str:
    return (
        f"Le fichier dépasse la taille maximale autorisée ({limit // (1024 * 1024)} Mo). "
        "Votre message n'a pas été envoyé : il est conservé ci-dessous, retirez ou réduisez le fichier."
    )


async def attachment_limit(services: Services, actor: dict[str, Any]) -> int:
    # customer_search: the limit is all that is needed here, not the actor's list of customers.
    options = await services.call("tickets", "form_options", actor=actor, customer_search=True)
    return int(options["attachment_limit"])


def check_content_length(request: Request, limit: int) -> None:
    """Refuse at once a body that cannot fit, before reading it."""
    try:
        declared = int(request.headers.get("content-length", "0"))
    except ValueError:
        declared = 0
    if declared > limit * MAX_FILES_PER_MESSAGE + 1024 * 1024:
        raise HTTPException(413, too_large_message(limit))


def uploaded_files(form: Any, field: str = "files") -> list[UploadFile]:
    files = [f for f in form.getlist(field) if isinstance(f, UploadFile) and f.filename]
    if len(files) > MAX_FILES_PER_MESSAGE:
        raise HTTPException(422, f"Pas plus de {MAX_FILES_PER_MESSAGE} fichiers par message.")
    return files


async def store_uploads(request: Request, files: list[UploadFile], limit: int) -> list[dict[str, Any]]:
    """Copy each upload into the blob store; HTTP 413 (French message) if one is over ``limit``."""
    store = blob_store(request)
    stored = []
    for upload in files:
        if upload.size is not None and upload.size > limit:
            raise HTTPException(413, too_large_message(limit))
        upload.file.seek(0)
        try:
            # The copy is blocking file I/O: off the event loop.
            blob = await asyncio.to_thread(store.put_stream, upload.file, limit)
        except BlobTooLarge as exc:
            raise HTTPException(413, too_large_message(limit)) from exc
        stored.append({"blob_key": blob.key, "filename": upload.filename, "size": blob.size})
    return stored


def _disposition(kind: str, filename: str) -> str:
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


async def _chunks(store: DirectoryBlobStore, key: str) -> AsyncIterator[bytes]:
    stream = await asyncio.to_thread(store.open, key)
    try:
        while chunk := await asyncio.to_thread(stream.read, CHUNK):
            yield chunk
    finally:
        stream.close()


INLINE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"}


def download_response(request: Request, attachment: dict[str, Any], preview: bool) -> StreamingResponse:
    """The file (or its preview) with headers that keep a browser from running it."""
    store = blob_store(request)
    if preview:
        if not attachment.get("thumbnail_key"):
            raise HTTPException(404, "Aucun aperçu pour ce fichier.")
        key, content_type, kind = attachment["thumbnail_key"], "image/jpeg", "inline"
    else:
        key, content_type = attachment["blob_key"], attachment["content_type"]
        kind = "inline" if content_type in INLINE_TYPES else "attachment"
    if not store.exists(key):
        raise HTTPException(404, "Fichier introuvable.")
    if content_type == "text/plain":
        content_type = "text/plain; charset=utf-8"
    headers = {
        "Content-Disposition": _disposition(kind, attachment["filename"]),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'",
        "Cache-Control": "private, max-age=300",
    }
    if not preview:
        headers["Content-Length"] = str(attachment["size"])
    return StreamingResponse(_chunks(store, key), media_type=content_type, headers=headers)
