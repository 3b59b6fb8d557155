"""The event envelope and the blob store."""

from __future__ import annotations

import io
import json

import pytest
from comptoir_common.blobs import BlobTooLarge, DirectoryBlobStore
from comptoir_common.events import Event, exchange_name, system_actor


def test_envelope_round_trips_through_json():
    event = Event(
        type="ticket.created", data={"number": 12, "title": "Ligne coupée"}, actor=system_actor("import")
    )
    envelope = json.loads(json.dumps(event.to_envelope()))
    assert set(envelope) == {"id", "type", "version", "occurred_at", "actor", "data"}
    assert Event.from_envelope(envelope) == event


def test_envelope_missing_fields_is_refused():
    with pytest.raises(ValueError, match="lacks"):
        Event.from_envelope({"id": "x", "type": "ticket.created"})


def test_exchange_name_per_service():
    assert exchange_name("tickets") == "tickets.events"


def test_blob_store_is_content_addressed_and_streams(tmp_path):
    store = DirectoryBlobStore(tmp_path)
    payload = b"\x89PNG" + b"x" * (3 * 1024 * 1024)
    first = store.put_stream(io.BytesIO(payload))
    second = store.put_bytes(payload)
    assert first == second and first.size == len(payload)
    with store.open(first.key) as blob:
        assert blob.read() == payload
    small = store.put_bytes(b"bonjour")  # bytes in memory, written once, no temp file left behind
    assert store.put_bytes(b"bonjour") == small and store.exists(small.key)
    assert not [p for p in tmp_path.rglob(".upload-*")]


def test_blob_over_limit_stores_nothing(tmp_path):
    store = DirectoryBlobStore(tmp_path)
    with pytest.raises(BlobTooLarge):
        store.put_stream(io.BytesIO(b"a" * 2048), max_size=1024)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_blob_keys_cannot_escape_the_store(tmp_path):
    store = DirectoryBlobStore(tmp_path)
    with pytest.raises(ValueError):
        store.open("../../etc/passwd")
