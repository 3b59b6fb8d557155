"""The event catalogue is consistent: valid schemas, examples that match them, an up-to-date AsyncAPI document."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
from comptoir_common import event_catalogue
from jsonschema import Draft202012Validator

REPO = Path(__file__).resolve().parents[2]
# The contracts every engineer builds against (helper brief); the catalogue must keep covering them.
CONTRACT_EVENTS = {
    "user.created", "user.updated", "user.deactivated", "user.reactivated",
    "customer.upserted", "customer.deactivated", "contact.upserted", "contact.removed",
    "ticket.created", "ticket.updated", "ticket.status_changed", "ticket.message_added", "ticket.assigned",
    "ticket.customer_attached", "ticket.closed", "ticket.reopened", "ticket.sla_breached",
}  # fmt: skip


def test_catalogue_covers_the_contracts():
    assert CONTRACT_EVENTS <= {spec.type for spec in event_catalogue.events()}


@pytest.mark.parametrize("spec", event_catalogue.events(), ids=lambda spec: spec.key)
def test_schema_is_valid_and_example_matches(spec):
    schema = event_catalogue.envelope_schema(spec)
    Draft202012Validator.check_schema(schema)
    assert spec.service in {"auth", "tickets", "notifier", "crm_sync", "mail_ingest", "reports", "wiki"}
    assert re.fullmatch(r"[a-z_]+\.[a-z_]+", spec.type)
    assert spec.summary.strip()
    assert event_catalogue.validate(spec.example_envelope()) is spec


def test_validation_refuses_what_breaks_the_contract():
    spec = event_catalogue.find("ticket.created", 1)
    envelope = spec.example_envelope()
    broken = json.loads(json.dumps(envelope))
    del broken["data"]["number"]
    with pytest.raises(jsonschema.ValidationError, match="number"):
        event_catalogue.validate(broken)
    wrong_type = json.loads(json.dumps(envelope))
    wrong_type["data"]["number"] = "1042"
    with pytest.raises(jsonschema.ValidationError):
        event_catalogue.validate(wrong_type)
    no_actor = {key: value for key, value in envelope.items() if key != "actor"}
    with pytest.raises(jsonschema.ValidationError, match="actor"):
        event_catalogue.validate(no_actor)
    with pytest.raises(event_catalogue.UnknownEvent, match="ticket.created.v7.json"):
        event_catalogue.validate(envelope | {"version": 7})
    # Adding fields is compatible (the promise): a subscriber's validation must not break on them.
    extended = json.loads(json.dumps(envelope))
    extended["data"]["new_field"] = {"anything": True}
    extended["trace_id"] = "abc"
    assert event_catalogue.validate(extended) is spec


def test_user_events_never_carry_secrets():
    envelope = event_catalogue.find("user.created", 1).example_envelope()
    envelope["data"]["password_hash"] = "$argon2id$..."
    with pytest.raises(jsonschema.ValidationError):
        event_catalogue.validate(envelope)


def test_docs_asyncapi_is_up_to_date():
    published = (REPO / "docs" / "asyncapi.json").read_text(encoding="utf-8")
    assert published == event_catalogue.asyncapi_json(), (
        "docs/asyncapi.json is stale: run `comptoir events asyncapi --output docs/asyncapi.json`"
    )


def _resolve(document: dict, pointer: str):
    node = document
    for part in pointer.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_asyncapi_document_structure_and_references():
    document = event_catalogue.asyncapi_document()
    assert document["asyncapi"] == "3.0.0"
    refs: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    refs.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(document)
    assert refs
    for ref in refs:
        assert ref.startswith("#/"), ref
        _resolve(document, ref)  # raises KeyError when dangling
    for spec in event_catalogue.events():
        channel = document["channels"][spec.type.replace(".", "_")]
        assert channel["address"] == spec.routing_key
        assert channel["bindings"]["amqp"]["exchange"]["name"] == spec.exchange
        message = document["components"]["messages"][spec.message_name]
        assert message["examples"][0]["payload"]["type"] == spec.type
    for operation in document["operations"].values():
        assert operation["action"] == "send"
        _resolve(document, operation["channel"]["$ref"])


def test_schema_files_are_named_after_their_event(tmp_path, monkeypatch):
    (tmp_path / "_definitions.json").write_text(
        (event_catalogue.SCHEMA_DIR / "_definitions.json").read_text()
    )
    (tmp_path / "wiki.page_published.v2.json").write_text(
        json.dumps({"event": "wiki.page_published", "version": 1, "service": "wiki", "summary": "x",
                    "data": {"type": "object"}, "example": {}})
    )  # fmt: skip
    monkeypatch.setattr(event_catalogue, "SCHEMA_DIR", tmp_path)
    event_catalogue._load.cache_clear()
    try:
        with pytest.raises(ValueError, match="wiki.page_published.v1.json"):
            event_catalogue.events()
    finally:
        monkeypatch.undo()
        event_catalogue._load.cache_clear()
