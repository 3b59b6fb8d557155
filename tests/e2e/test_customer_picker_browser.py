"""The customer picker in a real Chromium: type a few letters, pick a suggestion with the keyboard or the mouse, and
the ticket or the dashboard follows."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.ticket_helpers import Person, directory_customer, sign_in_browser


@pytest.fixture(scope="module")
def shops(system):
    # A letter first: a tag starting with digits could also match account numbers by prefix.
    tag = "k" + uuid.uuid4().hex[:5]
    with system.client() as http:
        admin = Person(system, http, "admin")
        agent = Person(system, http, "agent", name="Thomas Technicien")
        dubois = directory_customer(
            http,
            admin,
            f"Cordonnerie {tag} Dubois",
            account_number=f"411C{tag}",
            addresses=[{"city": "Lyon"}],
        )
        martin = directory_customer(http, admin, f"Cordonnerie {tag} Martin")
        unidentified = http.post(
            "/api/v1/tickets",
            json={"title": f"Talon décollé {tag}", "message": "Reçu par téléphone."},
            headers=agent.headers,
        ).json()
        for_dubois = http.post(
            "/api/v1/tickets",
            json={"title": f"Semelle usée {tag}", "message": "À reprendre.", "customer_id": dubois},
            headers=agent.headers,
        ).json()
    return {
        "tag": tag,
        "agent": agent,
        "dubois": dubois,
        "martin": martin,
        "unidentified": unidentified,
        "for_dubois": for_dubois,
    }


def test_attach_an_unidentified_ticket_with_the_keyboard(system, browser, shops):
    tag = shops["tag"]
    context, page = sign_in_browser(browser, system, shops["agent"])
    try:
        page.goto(f"/tickets/{shops['unidentified']['id']}")
        field = page.locator("#edit-customer")
        assert field.get_attribute("role") == "combobox"
        assert field.get_attribute("aria-expanded") == "false"
        field.press_sequentially(tag, delay=50)
        options = page.locator("#edit-customer-suggestions [role=option]")
        options.first.wait_for()
        assert field.get_attribute("aria-expanded") == "true"
        assert options.count() == 2
        assert options.nth(0).inner_text().startswith(f"Cordonnerie {tag} Dubois")
        assert f"compte 411C{tag} · Lyon" in options.nth(0).inner_text()

        field.press("ArrowDown")
        field.press("ArrowDown")
        assert field.get_attribute("aria-activedescendant") == "edit-customer-suggestions-1"
        assert options.nth(1).get_attribute("aria-selected") == "true"
        field.press("Enter")
        assert field.input_value() == f"Cordonnerie {tag} Martin"
        assert field.get_attribute("aria-expanded") == "false"
        assert page.locator("input[name=customer_id]").input_value() == shops["martin"]

        page.click("form[action$='/edit'] button[type=submit]")
        page.wait_for_url("**?saved=1")
        facts = page.locator("dl.facts")
        assert f"Cordonnerie {tag} Martin" in facts.inner_text()
        assert page.locator(".history >> text=a rattaché le ticket au client").count() == 1
        assert page.locator("#edit-customer").input_value() == f"Cordonnerie {tag} Martin"
    finally:
        context.close()


def test_filter_the_dashboard_by_a_picked_customer(system, browser, shops):
    tag = shops["tag"]
    context, page = sign_in_browser(browser, system, shops["agent"])
    try:
        field = page.locator("#filter-customer")
        field.press_sequentially(f"cordonnerie {tag}", delay=30)
        option = page.locator("#filter-customer-suggestions [role=option]", has_text="Dubois")
        option.wait_for()
        field.press("Escape")
        assert field.get_attribute("aria-expanded") == "false"
        field.press("ArrowDown")
        page.locator("#filter-customer[aria-expanded=true]").wait_for()
        option.click()
        assert field.input_value() == f"Cordonnerie {tag} Dubois"
        page.click(".ticket-filters button[type=submit]")
        page.wait_for_url(f"**customer_id={shops['dubois']}**")
        live = page.locator("#dashboard-live")
        assert f"Semelle usée {tag}" in live.inner_text()
        assert f"Talon décollé {tag}" not in live.inner_text()
        assert page.locator("#filter-customer").input_value() == f"Cordonnerie {tag} Dubois"
    finally:
        context.close()
