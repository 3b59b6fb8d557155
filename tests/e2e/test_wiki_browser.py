"""The wiki editor in a real browser (Debian's Chromium driven by Playwright): live preview, hostile content inert
under the gateway's Content-Security-Policy, save, and the rendered page."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

HOSTILE_LINES = (
    "<script>window.pwned = 'script'</script>\n\n"
    "<img src=x onerror=\"window.pwned = 'onerror'\">\n\n"
    "[clic](javascript:window.pwned='link')\n\n"
    "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)\n"
)


# ``browser``: the shared session fixture of comptoir_testing.browser (one Playwright per test process).


def test_editing_a_page_with_live_preview(system, browser):
    suffix = uuid.uuid4().hex[:6]
    customer_id = str(uuid.uuid4())
    email = f"redacteur.{suffix}@a6telecom.example"
    user = system.create_user(email, "agent", name="Rédacteur Technique")
    context = browser.new_context(base_url=system.base_url)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto("/login")
        page.fill("#email", email)
        page.fill("#password", user["password"])
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/login" not in url)

        page.goto(f"/wiki/new?customer_id={customer_id}")
        page.fill("#title", f"Installation {suffix}")
        editor = page.locator("#content")
        editor.fill("")
        editor.press_sequentially("# Baie de brassage\n\nVoir #4521 et **le plan**.\n\n", delay=5)
        preview = page.locator("#preview")
        expect(preview.locator("h1")).to_have_text("Baie de brassage")
        expect(preview.locator("strong")).to_have_text("le plan")
        expect(preview.locator("a.ticket-link")).to_have_attribute("href", "/wiki/tickets/4521")

        editor.fill(editor.input_value() + HOSTILE_LINES)
        editor.press("End")
        editor.press_sequentially("\nFin.", delay=5)
        expect(preview).to_contain_text("Fin.")
        expect(preview).to_contain_text("<script>")  # shown as text, not run
        assert preview.locator("script").count() == 0
        assert page.evaluate("window.pwned") is None

        page.click("button.primary[type=submit]")
        page.wait_for_url("**/wiki/pages/*")
        content = page.locator("article.wiki-content")
        expect(content.locator("h1")).to_have_text("Baie de brassage")
        expect(content).to_contain_text("Fin.")
        assert content.locator("script, [onerror]").count() == 0
        page.wait_for_timeout(300)
        assert page.evaluate("window.pwned") is None
        assert errors == []
    finally:
        context.close()
