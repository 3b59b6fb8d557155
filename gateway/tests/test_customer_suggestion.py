"""The sign-up approval page's customer suggestion: from crm_sync when it answers, a plain note when it cannot."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from comptoir_common.rpc_client import RemoteError, ServiceTimeout, ServiceUnavailable
from comptoir_gateway.web.admin import suggest_customer


class FakeClient:
    def __init__(self, outcome):
        self.outcome = outcome
        self.calls = []

    async def call(self, service, method, *args, **kwargs):
        self.calls.append((service, method, args, kwargs))
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


def _request(outcome):
    state = SimpleNamespace(rpc_client=FakeClient(outcome), settings=SimpleNamespace(crm_lookup_timeout=0.5))
    return SimpleNamespace(app=SimpleNamespace(state=state))


@pytest.mark.parametrize(
    "error",
    [ServiceUnavailable("no queue"), ServiceTimeout("too slow"), RemoteError("TypeError", "bad arguments")],
)
def test_suggestion_degrades_to_a_note_when_crm_sync_cannot_answer(error):
    result = asyncio.run(suggest_customer(_request(error), "claire@client.example"))
    assert result["available"] is False
    assert result["note"].startswith("Suggestion indisponible")


def test_suggestion_names_the_customer_of_a_known_contact():
    found = {
        "contact": {"id": "k-1", "name": "Claire"},
        "customer": {"id": "c-1", "name": "Boulangerie Martin"},
    }
    request = _request(found)
    result = asyncio.run(suggest_customer(request, "claire@client.example"))
    assert result["customer"]["name"] == "Boulangerie Martin"
    assert request.app.state.rpc_client.calls[0][:3] == (
        "crm_sync",
        "find_by_email",
        ("claire@client.example",),
    )


def test_unknown_contact_is_said_plainly():
    result = asyncio.run(suggest_customer(_request(None), "personne@client.example"))
    assert result["available"] is True and result["customer"] is None
    assert "aucun contact connu" in result["note"]
