"""Browser tests in a real Chromium: create, reply with a canned response and an attachment, internal note, close
and reopen, and the dashboard updating by itself."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.ticket_helpers import Person, customer_upserted, sign_in_browser, wait_until

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture(scope="module")
def people(system):
    with system.client() as http:
        agent = Person(system, http, "agent", name="Thomas Technicien")
        customer = customer_upserted(system.amqp_uri, "Boulangerie Dupont")
        client = Person(system, http, "client", customer_id=customer, name="Claire Cliente")
        wait_until(
            lambda: any(
                c["id"] == customer
                for c in http.get("/api/v1/tickets/options", headers=agent.headers).json()["customers"]
            ),
            what="customer read model",
        )
        return {"agent": agent, "client": client, "customer": customer}


def test_ticket_life_in_the_browser(system, browser, people, tmp_path):
    title = f"Fax en panne {uuid.uuid4().hex[:6]}"
    client_context, client_page = sign_in_browser(browser, system, people["client"])
    agent_context, agent_page = sign_in_browser(browser, system, people["agent"])
    try:
        # The agent's dashboard is open and listening.
        agent_page.wait_for_selector("#dashboard-live[data-live='on']")

        # The client creates a ticket with the form (no priority or internal note offered).
        client_page.goto("/tickets/new")
        assert (
            client_page.locator("#priority").count() == 0
            and client_page.locator("#internal_note").count() == 0
        )
        client_page.fill("#title", title)
        client_page.select_option("#type", "incident")
        client_page.fill("#message", "Le fax ne reçoit plus rien depuis ce matin.")
        client_page.click("main button[type=submit]")
        client_page.wait_for_selector("text=a bien été enregistrée")
        ticket_url = client_page.url.split("?")[0]

        # ... and the agent's dashboard shows it without being reloaded.
        agent_page.wait_for_selector(f"#dashboard-live >> text={title}", timeout=10000)

        # The agent replies with a canned response and an attachment.
        agent_page.goto(ticket_url)
        agent_page.select_option("select.canned", label="Prise en charge")
        reply = agent_page.input_value("#body")
        assert "Bonjour Boulangerie Dupont" in reply and "Thomas Technicien" in reply
        picture = tmp_path / "schema.png"
        picture.write_bytes(PNG)
        agent_page.set_input_files("#files", str(picture))
        agent_page.click("section.reply button[type=submit]")
        agent_page.wait_for_selector("a.attachment-link:has-text('schema.png')")
        assert agent_page.locator("img.preview").count() == 1
        assert (
            agent_page.locator("article.message:has-text('Nous avons bien reçu votre demande n°')").count()
            == 1
        )

        # An internal note.
        agent_page.fill("#body", "Le client a déjà redémarré le fax.")
        agent_page.check("#internal")
        agent_page.click("section.reply button[type=submit]")
        agent_page.wait_for_selector("article.message.internal:has-text('déjà redémarré')")

        # The client sees the reply and the picture, never the note; closes and reopens.
        client_page.goto(ticket_url)
        client_page.wait_for_selector("text=Nous avons bien reçu votre demande")
        assert client_page.locator("text=déjà redémarré").count() == 0
        assert client_page.locator("text=Note interne").count() == 0
        client_page.click("button:has-text('Clôturer')")
        client_page.wait_for_selector("#ticket-status:has-text('Clôturé')")
        client_page.click("button:has-text('Rouvrir')")
        client_page.wait_for_selector("#ticket-status:has-text('En cours')")
        assert client_page.locator(".history >> text=a rouvert le ticket").count() == 1
    finally:
        client_context.close()
        agent_context.close()
