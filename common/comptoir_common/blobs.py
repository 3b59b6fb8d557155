"""Blob store for large bytes (attachments, raw mails): content-addressed, streamed, never over AMQP.

Messages and rows carry the blob's key (its SHA-256); the bytes live in the store. The directory store is the
default; another backend (S3-compatible) only has to implement :class:`BlobStore`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

CHUNK_SIZE = 1024 * 1024


class BlobTooLarge(Exception):
    """The stream went past the size limit; nothing was stored."""

    def __init__(self, limit: int):
        super().__init__(f"blob larger than {limit} bytes")
        self.limit = limit


@dataclass(frozen=True)
class StoredBlob:
    key: str
    size: int


class BlobStore(Protocol):
    def put_stream(self, stream: BinaryIO, max_size: int | None = None) -> StoredBlob: ...

    def put_bytes(self, data: bytes) -> StoredBlob: ...

    def open(self, key: str) -> BinaryIO: ...

    def exists(self, key: str) -> bool: ...


class DirectoryBlobStore:
    """Blobs as files named by their SHA-256 under ``root/ab/cd/<hash>``; writes are atomic (temp file + rename)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._made_dirs: set[Path] = set()

    def _parent_ready(self, target: Path) -> None:
        """The blob's folder exists (created once per process: a mkdir per blob is a syscall and an exception)."""
        if target.parent not in self._made_dirs:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._made_dirs.add(target.parent)

    def _path(self, key: str) -> Path:
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise ValueError("invalid blob key")
        return self.root / key[:2] / key[2:4] / key

    def put_stream(self, stream: BinaryIO, max_size: int | None = None) -> StoredBlob:
        digest = hashlib.sha256()
        size = 0
        fd, temp_name = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as temp:
                while chunk := stream.read(CHUNK_SIZE):
                    size += len(chunk)
                    if max_size is not None and size > max_size:
                        raise BlobTooLarge(max_size)
                    digest.update(chunk)
                    temp.write(chunk)
            key = digest.hexdigest()
            target = self._path(key)
            self._parent_ready(target)
            os.replace(temp_name, target)
            return StoredBlob(key=key, size=size)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise

    def put_bytes(self, data: bytes) -> StoredBlob:
        """Bytes already in memory: hashed at once, and not written again when the store has them (same key)."""
        key = hashlib.sha256(data).hexdigest()
        target = self._path(key)
        if not target.exists():
            self._parent_ready(target)
            fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
            try:
                with os.fdopen(fd, "wb") as temp:
                    temp.write(data)
                os.replace(temp_name, target)
            except BaseException:
                Path(temp_name).unlink(missing_ok=True)
                raise
        return StoredBlob(key=key, size=len(data))

    def open(self, key: str) -> BinaryIO:
        return self._path(key).open("rb")

    def exists(self, key: str) -> bool:
        return self._path(key).exists()
