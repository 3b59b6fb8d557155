"""The event catalogue: one JSON file per event type and version, the envelope schema, the AsyncAPI document.

To add an event (or a new version of one), add ``schemas/<type>.v<version>.json``::

    {"event": "wiki.page_published", "version": 1, "service": "wiki",
     "summary": "one line", "description": "what a subscriber must know",
     "data": {<JSON Schema of the envelope's data; may use {"$ref": "#/$defs/<name>"} from _definitions.json>},
     "example": {<an example of data, checked against the schema by the tests>}}

Nothing else changes: the AsyncAPI document (``docs/asyncapi.json``, regenerated with ``comptoir events asyncapi``),
the gateway's ``/api/v1/events/asyncapi.json`` and ``/evenements`` page, and the tests that validate the events
really published are all built from these files.

Compatibility promise: adding fields to ``data`` is compatible and keeps the version (schemas therefore allow
properties they do not list); removing, renaming or changing the meaning or type of a field is a new version,
published alongside the old one for a transition period.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).parent / "schemas"
DEFINITIONS_FILE = "_definitions.json"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
COMPATIBILITY = (
    "Adding fields to `data` (or to the envelope) is compatible and keeps the version: ignore fields you do not "
    "know. Removing or renaming a field, or changing its type or meaning, is a new `version`, published alongside "
    "the old one (same routing key, header `comptoir-event-version`) for a transition period announced in "
    "docs/events.md. Delivery is at least once: use the event `id` to ignore duplicates."
)


@dataclass(frozen=True)
class EventSpec:
    type: str
    version: int
    service: str
    summary: str
    description: str
    data_schema: dict[str, Any]
    example: dict[str, Any]

    @property
    def exchange(self) -> str:
        return f"{self.service}.events"

    @property
    def routing_key(self) -> str:
        return self.type

    @property
    def key(self) -> str:
        return f"{self.type}.v{self.version}"

    @property
    def message_name(self) -> str:
        return (
            "".join(part.capitalize() for part in self.type.replace("_", ".").split(".")) + f"V{self.version}"
        )

    def example_envelope(self) -> dict[str, Any]:
        return {
            "id": "5b0c0d52-3f0e-4a53-9d38-8c1f0b1f2e4a",
            "type": self.type,
            "version": self.version,
            "occurred_at": "2026-11-28T08:02:11.123456+00:00",
            "actor": {
                "kind": "user",
                "id": "7d2e9a40-1b3c-4d5e-8f60-718293a4b5c6",
                "role": "agent",
                "name": "Hugo Bernard",
            },
            "data": copy.deepcopy(self.example),
        }


def definitions() -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / DEFINITIONS_FILE).read_text(encoding="utf-8"))["$defs"]


@cache
def _load() -> tuple[EventSpec, ...]:
    specs = []
    for path in sorted(SCHEMA_DIR.glob("*.v*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        spec = EventSpec(
            type=raw["event"],
            version=int(raw["version"]),
            service=raw["service"],
            summary=raw["summary"],
            description=raw.get("description", ""),
            data_schema=raw["data"],
            example=raw["example"],
        )
        if path.name != f"{spec.key}.json":
            raise ValueError(f"{path.name}: the file must be named {spec.key}.json")
        specs.append(spec)
    return tuple(specs)


def events() -> tuple[EventSpec, ...]:
    """Every event type and version in the catalogue, sorted by file name."""
    return _load()


def find(event_type: str, version: int) -> EventSpec | None:
    return next((s for s in events() if s.type == event_type and s.version == version), None)


def exchanges() -> list[str]:
    return sorted({spec.exchange for spec in events()})


ACTOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Who caused the event: a person (kind=user) or the system (kind=system, e.g. a sync or a timer).",
    "oneOf": [
        {
            "properties": {
                "kind": {"const": "user"},
                "id": {"type": "string"},
                "role": {"type": ["string", "null"]},
                "name": {"type": ["string", "null"]},
            },
            "required": ["kind", "id"],
        },
        {
            "properties": {
                "kind": {"const": "system"},
                "id": {"type": "null"},
                "name": {"type": "string"},
            },
            "required": ["kind", "name"],
        },
    ],
}


def envelope_schema(spec: EventSpec) -> dict[str, Any]:
    """The self-contained JSON Schema (2020-12) of a whole message of ``spec``: envelope, actor and data."""
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"https://comptoir.local/events/{spec.key}.json",
        "title": f"{spec.type} v{spec.version}",
        "description": spec.summary,
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid", "description": "Event id; equals the AMQP message_id"},
            "type": {"const": spec.type},
            "version": {"const": spec.version},
            "occurred_at": {"type": "string", "format": "date-time"},
            "actor": ACTOR_SCHEMA,
            "data": copy.deepcopy(spec.data_schema),
        },
        "required": ["id", "type", "version", "occurred_at", "actor", "data"],
        "$defs": definitions(),
    }


class UnknownEvent(LookupError):
    pass


def validate(envelope: dict[str, Any]) -> EventSpec:
    """Raise ``jsonschema.ValidationError`` (or :class:`UnknownEvent`) unless ``envelope`` matches the catalogue."""
    from jsonschema import Draft202012Validator

    spec = find(envelope.get("type", ""), envelope.get("version", 0))
    if spec is None:
        raise UnknownEvent(
            f"{envelope.get('type')} v{envelope.get('version')} is not in the event catalogue: add "
            f"common/comptoir_common/event_catalogue/schemas/{envelope.get('type')}.v{envelope.get('version')}.json"
        )
    Draft202012Validator(envelope_schema(spec), format_checker=Draft202012Validator.FORMAT_CHECKER).validate(
        envelope
    )
    return spec


def _rewrite_refs(node: Any) -> Any:
    """``#/$defs/x`` → ``#/components/schemas/x`` so that the schemas resolve inside the AsyncAPI document."""
    if isinstance(node, dict):
        return {
            key: (
                value.replace("#/$defs/", "#/components/schemas/")
                if key == "$ref" and isinstance(value, str)
                else _rewrite_refs(value)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(item) for item in node]
    return node


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of every event (stable output: ``docs/asyncapi.json`` is compared to it)."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = _rewrite_refs(definitions())
    schemas["Actor"] = ACTOR_SCHEMA
    by_type: dict[str, list[EventSpec]] = {}
    for spec in events():
        by_type.setdefault(spec.type, []).append(spec)
    for event_type, specs in sorted(by_type.items()):
        service = specs[0].service
        channel_id = event_type.replace(".", "_")
        for spec in specs:
            payload = envelope_schema(spec)
            payload.pop("$defs")
            payload.pop("$schema")
            payload["properties"]["actor"] = {"$ref": "#/components/schemas/Actor"}
            messages[spec.message_name] = {
                "name": spec.type,
                "title": f"{spec.type} v{spec.version}",
                "summary": spec.summary,
                "description": spec.description or spec.summary,
                "contentType": "application/json",
                "headers": {
                    "type": "object",
                    "properties": {
                        "comptoir-event-type": {"const": spec.type},
                        "comptoir-event-version": {"const": spec.version},
                    },
                },
                "payload": _rewrite_refs(payload),
                "examples": [{"name": f"{spec.key}", "payload": spec.example_envelope()}],
                "bindings": {
                    "amqp": {"deliveryMode": 2, "messageType": spec.type, "bindingVersion": "0.3.0"}
                },
                "x-comptoir-version": spec.version,
            }
        channels[channel_id] = {
            "address": event_type,
            "title": event_type,
            "description": f"Routing key `{event_type}` on the topic exchange `{service}.events`.",
            "messages": {
                spec.message_name: {"$ref": f"#/components/messages/{spec.message_name}"} for spec in specs
            },
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": {
                        "name": f"{service}.events",
                        "type": "topic",
                        "durable": True,
                        "autoDelete": False,
                        "vhost": "/",
                    },
                    "bindingVersion": "0.3.0",
                }
            },
        }
        operations[f"publish_{channel_id}"] = {
            "action": "send",
            "title": f"{service} publishes {event_type}",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "messages": [{"$ref": f"#/channels/{channel_id}/messages/{spec.message_name}"} for spec in specs],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Comptoir events",
            "version": "1.0.0",
            "description": (
                "Domain events of Comptoir. Each is a persistent JSON message on the topic exchange "
                "`<service>.events` with the event type as routing key, `message_id` = event id. "
                "Subscribe with a durable queue of your own bound to the routing keys you want "
                "(see docs/events.md and examples/subscriber.py).\n\nCompatibility: " + COMPATIBILITY
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "production": {
                "host": "rabbitmq:5672",
                "protocol": "amqp",
                "protocolVersion": "0-9-1",
                "description": "The Comptoir RabbitMQ broker (ask the operators for an account of your own).",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def asyncapi_json() -> str:
    return json.dumps(asyncapi_document(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"
