"""Markdown to safe HTML: no script from page content ever runs.

Two layers, each enough on its own for the usual attacks:

1. markdown-it-py with raw HTML disabled: ``<script>``, ``<img onerror=...>`` and every other tag typed in a page are
   shown as text; its link validation refuses ``javascript:``, ``vbscript:`` and ``file:`` targets.
2. nh3 (ammonia) keeps only an allowlist of tags and attributes, only ``http``, ``https`` and ``mailto`` links (or
   relative ones), and images only from our own paths (attachments): no ``data:`` URL, no tracking pixel.

The gateway's Content-Security-Policy (``script-src 'self'``) is the third layer.

Wiki syntax on top of CommonMark (plus tables and strikethrough): ``[[Titre d'une page]]`` or
``[[Titre|libellé]]`` links to a page of the same customer (or a general page), and ``#1234`` to a ticket.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote

import nh3
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token

WIKI_LINK = re.compile(r"\[\[([^\[\]\n|]{1,200})(?:\|([^\[\]\n]{1,200}))?\]\]")
TICKET_REFERENCE = re.compile(r"(?<![\w&/#])#(\d{1,9})\b")
_INLINE_PATTERN = re.compile(f"{WIKI_LINK.pattern}|{TICKET_REFERENCE.pattern}")

ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "s", "del", "code", "pre",
    "blockquote", "ul", "ol", "li", "a", "img", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title", "class"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
    "code": {"class"},
}
URL_SCHEMES = {"http", "https", "mailto"}


def ticket_url(number: int) -> str:
    return f"/wiki/tickets/{number}"


def page_url(page_id: str) -> str:
    return f"/wiki/pages/{page_id}"


def missing_page_url(title: str, customer_id: str | None) -> str:
    url = f"/wiki/new?title={quote(title)}"
    return url + (f"&customer_id={quote(customer_id)}" if customer_id else "")


def normalise_title(title: str) -> str:
    return " ".join(title.split()).casefold()


def wiki_link_titles(content: str) -> set[str]:
    """The page titles a content links to with ``[[...]]`` (normalised)."""
    return {normalise_title(match.group(1)) for match in WIKI_LINK.finditer(content or "")}


def ticket_numbers(content: str) -> set[int]:
    """The ticket numbers a content cites as ``#1234`` (outside code)."""
    numbers: set[int] = set()
    for token in _markdown().parse(content or ""):
        for child in token.children or ():
            if child.type == "text":
                numbers.update(int(number) for number in TICKET_REFERENCE.findall(child.content))
    return numbers


@dataclass
class RenderContext:
    """What the renderer needs to resolve wiki links: normalised title → page id, within the page's scope."""

    customer_id: str | None = None
    pages_by_title: dict[str, str] = field(default_factory=dict)


def _link_tokens(href: str, label: str, css_class: str | None = None) -> list[Token]:
    opening = Token("link_open", "a", 1, attrs={"href": href})
    if css_class:
        opening.attrSet("class", css_class)
    text = Token("text", "", 0, content=label)
    return [opening, text, Token("link_close", "a", -1)]


def _wiki_syntax(state: StateCore) -> None:
    """Turn ``[[Titre]]`` and ``#1234`` in plain text (not in code, not inside links) into links."""
    context: RenderContext | None = state.env.get("wiki")
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        children: list[Token] = []
        link_depth = 0
        for token in block.children:
            if token.type == "link_open":
                link_depth += 1
            elif token.type == "link_close":
                link_depth -= 1
            if token.type != "text" or link_depth > 0 or not _INLINE_PATTERN.search(token.content):
                children.append(token)
                continue
            position = 0
            for match in _INLINE_PATTERN.finditer(token.content):
                if match.start() > position:
                    children.append(Token("text", "", 0, content=token.content[position : match.start()]))
                if match.group(1) is not None:
                    title = match.group(1).strip()
                    label = (match.group(2) or title).strip()
                    page_id = context.pages_by_title.get(normalise_title(title)) if context else None
                    if page_id:
                        children.extend(_link_tokens(page_url(page_id), label, "wiki-link"))
                    else:
                        href = missing_page_url(title, context.customer_id if context else None)
                        children.extend(_link_tokens(href, label, "wiki-link wiki-missing"))
                else:
                    number = int(match.group(3))
                    children.extend(_link_tokens(ticket_url(number), f"#{number}", "ticket-link"))
                position = match.end()
            if position < len(token.content):
                children.append(Token("text", "", 0, content=token.content[position:]))
        block.children = children


_md: MarkdownIt | None = None


def _markdown() -> MarkdownIt:
    global _md
    if _md is None:
        md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
        md.enable(["table", "strikethrough"])
        md.core.ruler.push("wiki_syntax", _wiki_syntax)
        _md = md
    return _md


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    # Images only from our own paths (attachments): no data: URL, no remote pixel, no protocol-relative URL.
    if tag == "img" and attribute == "src":
        return value if value.startswith("/") and not value.startswith("//") else None
    if tag == "code" and attribute == "class":
        return value if re.fullmatch(r"language-[\w+-]{1,30}", value) else None
    if tag == "a" and attribute == "class":
        return value if value in ("wiki-link", "wiki-link wiki-missing", "ticket-link") else None
    return value


def sanitise_html(html: str) -> str:
    """Keep only the allowlisted tags, attributes and URL schemes."""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
        attribute_filter=_attribute_filter,
    )


def render_markdown(content: str, context: RenderContext | None = None) -> str:
    """Safe HTML for ``content``."""
    html = _markdown().render(content or "", {"wiki": context or RenderContext()})
    return sanitise_html(html)
