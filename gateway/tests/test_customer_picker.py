"""How a customer picker's fields are turned into a customer: the picked id, or the typed text resolved."""

from __future__ import annotations

import asyncio

from comptoir_gateway.web.customer_picker import customer_name, resolve
from fastapi import HTTPException

ACTOR = {"id": "u-1", "role": "agent"}


class FakeServices:
    def __init__(self, found: list[dict]):
        self.found = found
        self.calls: list[tuple] = []

    async def call(self, service: str, method: str, **kwargs):
        self.calls.append((service, method, kwargs))
        return self.found


def _customer(customer_id: str, name: str, exact: bool = False, **more) -> dict:
    return {"id": customer_id, "name": name, "account_number": None, "city": None, "exact": exact} | more


def _resolve(fields: dict, found: list[dict] | None = None):
    services = FakeServices(found or [])
    return asyncio.run(resolve(services, ACTOR, fields)), services.calls


def test_a_select_sends_the_id_alone():
    choice, calls = _resolve({"customer_id": "c-1"})
    assert choice.customer_id == "c-1" and choice.error is None and calls == []


def test_a_picked_customer_is_kept_without_asking_the_directory():
    fields = {
        "customer_id": "c-1",
        "customer_name": "Boulangerie Dupont",
        "customer_label": "Boulangerie Dupont",
    }
    choice, calls = _resolve(fields)
    assert (choice.customer_id, choice.name) == ("c-1", "Boulangerie Dupont") and calls == []


def test_a_text_changed_without_javascript_replaces_the_stale_id():
    fields = {"customer_id": "c-1", "customer_name": "pharmacie", "customer_label": "Boulangerie Dupont"}
    choice, calls = _resolve(fields, [_customer("c-2", "Pharmacie Centrale")])
    assert (choice.customer_id, choice.name) == ("c-2", "Pharmacie Centrale")
    assert calls[0][:2] == ("crm_sync", "search_customers") and calls[0][2]["query"] == "pharmacie"


def test_an_emptied_text_means_no_customer():
    choice, _ = _resolve({"customer_id": "c-1", "customer_name": " ", "customer_label": "Boulangerie Dupont"})
    assert choice.customer_id is None and choice.error is None


def test_the_exact_name_wins_over_longer_ones():
    found = [_customer("c-1", "Élodie", exact=True), _customer("c-2", "Élodie Fleurs")]
    choice, _ = _resolve({"customer_name": "elodie"}, found)
    assert choice.customer_id == "c-1"


def test_several_matches_are_named_in_french_with_what_tells_them_apart():
    found = [
        _customer("c-1", "Pharmacie du Centre", exact=True, account_number="411PH1", city="Lyon"),
        _customer("c-2", "Pharmacie du Centre", exact=True, city="Vienne"),
    ]
    choice, _ = _resolve({"customer_name": "Pharmacie du Centre"}, found)
    assert choice.customer_id is None and choice.name == "Pharmacie du Centre"
    assert "Plusieurs clients correspondent" in choice.error
    assert "Pharmacie du Centre (compte 411PH1 · Lyon), Pharmacie du Centre (Vienne)." in choice.error


def test_no_match_is_said_plainly():
    choice, _ = _resolve({"customer_name": "Zzz"})
    assert choice.customer_id is None and choice.error == "Aucun client ne correspond à « Zzz »."


class RefusingServices:
    async def call(self, service: str, method: str, **kwargs):
        raise HTTPException(404, "Client introuvable.")


def test_a_linked_customer_the_viewer_may_not_see_is_shown_without_a_name():
    assert asyncio.run(customer_name(RefusingServices(), ACTOR, "c-9")) == ""
