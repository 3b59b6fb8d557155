"""Hostile Markdown never yields something that runs: no script, no event handler, no javascript:/data: URL."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from comptoir_wiki.rendering import RenderContext, render_markdown, sanitise_html

HOSTILE = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "[clic](javascript:alert(1))",
    "[clic](JaVaScRiPt:alert(1))",
    "[clic](javascript&#58;alert(1))",
    "[clic](&#106;avascript:alert(1))",
    "[clic]( javascript:alert(1) )",
    "[clic](vbscript:msgbox(1))",
    "<img src=x onerror=alert(1)>",
    '<a href="#" onclick="alert(1)">x</a>',
    '![x](x" onerror="alert(1))',
    "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "![x](data:image/png;base64,iVBORw0KGgo=)",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "<iframe src=https://evil.example></iframe>",
    "<style>body{display:none}</style>",
    "<svg><script>alert(1)</script></svg>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    "<!-- <script>alert(1)</script> -->",
    "[[<img src=x onerror=alert(1)>]]",
    "[[x|<script>alert(1)</script>]]",
    "[ref]\n\n[ref]: javascript:alert(1)",
    "<form action=https://evil.example><input name=p></form>",
    "<meta http-equiv=refresh content='0;url=https://evil.example'>",
    "![pixel](https://tracker.example/p.gif)",
    "![pixel](//tracker.example/p.gif)",
]


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _elements(html: str):
    collector = _Collector()
    collector.feed(html)
    return collector.tags


@pytest.mark.parametrize("content", HOSTILE)
def test_hostile_markdown_renders_inert(content):
    html = render_markdown(content, RenderContext("c", {}))
    for tag, attrs in _elements(html):
        assert tag in {"p", "a", "img", "code", "pre", "em", "strong"}, html
        for name, value in attrs.items():
            assert not name.startswith("on"), html
            assert name != "style", html
            if name in ("href", "src"):
                lowered = (value or "").strip().lower()
                assert not lowered.startswith(("javascript:", "vbscript:", "data:", "//")), html
                if tag == "img":
                    assert lowered.startswith("/"), html


def test_raw_html_is_shown_as_text():
    html = render_markdown("Avant <b>gras</b> <script>x()</script>")
    assert "&lt;b&gt;gras&lt;/b&gt;" in html and "&lt;script&gt;" in html


def test_sanitiser_alone_strips_dangerous_html():
    html = sanitise_html(
        '<p onclick="x()">a<script>b()</script><a href="javascript:c()">d</a><img src="data:x"></p>'
    )
    assert _elements(html) == [("p", {}), ("a", {"rel": "noopener noreferrer nofollow"}), ("img", {})]


def test_ordinary_markdown_keeps_its_formatting():
    html = render_markdown(
        "# Titre\n\n**gras** *italique* ~~barré~~\n\n- un\n- deux\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        "```\ncode\n```\n\n[site](https://a6telecom.example) ![schéma](/api/v1/wiki/attachments/abc)"
    )
    for fragment in ("<h1>Titre</h1>", "<strong>gras</strong>", "<em>italique</em>", "<s>barré</s>", "<li>un</li>",
                     "<table>", "<pre><code>code", 'href="https://a6telecom.example"',
                     'src="/api/v1/wiki/attachments/abc"'):  # fmt: skip
        assert fragment in html


def test_ticket_references_outside_code_only():
    html = render_markdown("Voir #1234, `#99` et la couleur &#35;fff.")
    assert 'href="/wiki/tickets/1234"' in html and "/wiki/tickets/99" not in html
