"""A real Chromium signs in with the second factor, reading the code from the real SMTP server."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import expect

# ``browser``: the shared session fixture of comptoir_testing.browser (one Playwright per test process: a second
# sync Playwright in the same process fails).


def _code_after(system, recipient: str, seen: int) -> str:
    mail = system.smtp.wait_for(
        lambda m: (
            m["To"] == recipient
            and "code de connexion" in str(m["Subject"])
            and system.smtp.messages.index(m) >= seen
        )
    )
    return re.search(r"\b(\d{6})\b", mail.get_body(("plain",)).get_content()).group(1)


def _sign_in(page, system, person) -> None:
    page.goto(f"{system.base_url}/login")
    page.get_by_label("Adresse e-mail").fill(person["email"])
    page.get_by_label("Mot de passe").fill(person["password"])
    page.get_by_role("button", name="Se connecter").click()


def test_sign_in_with_the_emailed_code_then_trust_the_browser(system, browser):
    email = f"navigateur.{uuid.uuid4().hex[:8]}@client.example"
    person = system.create_user(email, "client", customer_id=str(uuid.uuid4()), name="Béatrice Navigatrice")
    with system.client() as http:
        headers = system.login(http, email, person["password"])
        assert http.put("/api/v1/me/two-factor", json={"enabled": True}, headers=headers).status_code == 200

    context = browser.new_context(locale="fr-FR")
    page = context.new_page()
    seen = len(system.smtp.messages)
    _sign_in(page, system, person)
    expect(page.get_by_role("heading", name="Code de vérification")).to_be_visible()
    code = _code_after(system, email, seen)
    page.get_by_label("Code reçu par e-mail").fill("000000" if code != "000000" else "111111")
    page.get_by_role("button", name="Valider").click()
    expect(page.get_by_role("alert")).to_contain_text("Code incorrect. Il vous reste 4 essais.")
    page.get_by_label("Code reçu par e-mail").fill(code)
    page.get_by_label("Faire confiance à ce navigateur pendant 30 jours").check()
    page.get_by_role("button", name="Valider").click()
    expect(page.get_by_role("heading", name="Tableau de bord")).to_be_visible()
    expect(page.get_by_text("Béatrice Navigatrice")).to_be_visible()
    cookies = {cookie["name"]: cookie for cookie in context.cookies()}
    assert cookies["comptoir_session"]["httpOnly"] and cookies["comptoir_device"]["httpOnly"]

    # Signed out, then back: this browser is trusted, no code is asked.
    page.get_by_role("button", name="Se déconnecter", exact=True).click()
    expect(page.get_by_role("heading", name="Connexion")).to_be_visible()
    _sign_in(page, system, person)
    expect(page.get_by_role("heading", name="Tableau de bord")).to_be_visible()

    # The profile lists the trusted browser; revoking it brings the code back.
    page.goto(f"{system.base_url}/profil")
    expect(page.get_by_role("heading", name="Navigateurs de confiance")).to_be_visible()
    page.get_by_role("button", name="Révoquer").first.click()
    expect(page.get_by_role("status")).to_contain_text("n'est plus reconnu")
    page.get_by_role("button", name="Se déconnecter", exact=True).click()
    _sign_in(page, system, person)
    expect(page.get_by_role("heading", name="Code de vérification")).to_be_visible()
    context.close()
