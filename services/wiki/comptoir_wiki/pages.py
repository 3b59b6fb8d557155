"""Wiki pages: create, read, edit with revisions, diff, restore, search; the visibility policy on every path."""

from __future__ import annotations

import re
import uuid
from typing import Any

from comptoir_common.db import is_postgres, utcnow
from comptoir_common.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from comptoir_common.events import Event, user_actor
from comptoir_common.outbox import add_event
from sqlalchemy import delete, func, literal_column, or_, select
from sqlalchemy.orm import Session

from comptoir_wiki import merging, policy, rendering
from comptoir_wiki.customers import customer_names
from comptoir_wiki.models import OutboxMessage, Page, PageTag, Revision, TicketReference

MAX_TITLE_LENGTH = 200
MAX_CONTENT_LENGTH = 500_000
MAX_TAGS = 20
MAX_TAG_LENGTH = 50
MAX_COMMENT_LENGTH = 300
MAX_RESULTS = 200
_UNSET: Any = object()


# --- validation -------------------------------------------------------------------------------------------------


def _uuid_or_none(value: str | None, what: str) -> str | None:
    if value in (None, ""):
        return None
    try:
        return str(uuid.UUID(str(value)))
    except ValueError as exc:
        raise InvalidInput(f"Identifiant de {what} invalide.") from exc


def _clean_title(title: str | None) -> str:
    title = " ".join((title or "").split())
    if not title:
        raise InvalidInput("Le titre est obligatoire.")
    if len(title) > MAX_TITLE_LENGTH:
        raise InvalidInput(f"Le titre ne doit pas dépasser {MAX_TITLE_LENGTH} caractères.")
    return title


def _clean_content(content: str | None) -> str:
    content = (content or "").replace("\r\n", "\n")
    if len(content) > MAX_CONTENT_LENGTH:
        raise InvalidInput(f"Le contenu ne doit pas dépasser {MAX_CONTENT_LENGTH} caractères.")
    lines = set(content.split("\n"))
    if merging.MINE_MARKER in lines and merging.THEIRS_MARKER in lines:
        raise InvalidInput(
            "Le contenu contient encore des marques de conflit (<<<<<<< … >>>>>>>) : choisissez le texte à garder."
        )
    return content


def _clean_tags(tags: list[str] | str | None) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = tags.split(",")
    cleaned: list[str] = []
    seen: set[str] = set()
    for tag in tags:
        tag = " ".join(str(tag).split()).lstrip("#")
        if not tag:
            continue
        if len(tag) > MAX_TAG_LENGTH:
            raise InvalidInput(f"Une étiquette ne doit pas dépasser {MAX_TAG_LENGTH} caractères.")
        if tag.casefold() not in seen:
            seen.add(tag.casefold())
            cleaned.append(tag)
    if len(cleaned) > MAX_TAGS:
        raise InvalidInput(f"Une page ne peut pas avoir plus de {MAX_TAGS} étiquettes.")
    return cleaned


def _clean_comment(comment: str | None) -> str | None:
    comment = " ".join((comment or "").split())
    return comment[:MAX_COMMENT_LENGTH] or None


def _check_title_free(
    session: Session, customer_id: str | None, title: str, page_id: str | None = None
) -> None:
    """Titles are unique within a customer's wiki (and among general pages): ``[[Titre]]`` links resolve by title."""
    scope = Page.customer_id == customer_id if customer_id else Page.customer_id.is_(None)
    query = select(Page.id).where(scope, func.lower(Page.title) == title.lower())
    if page_id:
        query = query.where(Page.id != page_id)
    if session.scalar(query.limit(1)):
        raise InvalidInput("Une page porte déjà ce titre dans ce wiki.")


def _check_parent(
    session: Session, parent_id: str | None, customer_id: str | None, page_id: str | None
) -> None:
    if parent_id is None:
        return
    parent = session.get(Page, parent_id)
    if parent is None or parent.customer_id != customer_id:
        raise InvalidInput("La page parente doit exister et appartenir au même wiki.")
    # Walk up from the parent: meeting the page itself would make a loop.
    seen: set[str] = set()
    current: Page | None = parent
    while current is not None and current.id not in seen:
        if current.id == page_id:
            raise InvalidInput(
                "Une page ne peut pas être rangée sous elle-même ou sous une de ses sous-pages."
            )
        seen.add(current.id)
        current = session.get(Page, current.parent_id) if current.parent_id else None


# --- serialisation ----------------------------------------------------------------------------------------------


def page_to_dict(page: Page, *, customer_name: str | None = None) -> dict[str, Any]:
    """The page's metadata (no content), as lists, search results and events carry it."""
    return {
        "id": page.id,
        "customer_id": page.customer_id,
        "customer_name": customer_name,
        "parent_id": page.parent_id,
        "title": page.title,
        "tags": list(page.tags or []),
        "visible_to_customer": page.visible_to_customer,
        "revision": page.revision,
        "created_at": page.created_at.isoformat(),
        "created_by": {"id": page.created_by_id, "name": page.created_by_name},
        "updated_at": page.updated_at.isoformat(),
        "updated_by": {"id": page.updated_by_id, "name": page.updated_by_name},
    }


def revision_to_dict(revision: Revision, *, with_content: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "number": revision.number,
        "title": revision.title,
        "tags": list(revision.tags or []),
        "parent_id": revision.parent_id,
        "visible_to_customer": revision.visible_to_customer,
        "comment": revision.comment,
        "author": {"id": revision.author_id, "name": revision.author_name},
        "created_at": revision.created_at.isoformat(),
    }
    if with_content:
        data["content"] = revision.content
    return data


def attachment_to_dict(attachment) -> dict[str, Any]:
    return {
        "id": attachment.id,
        "page_id": attachment.page_id,
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "url": f"/api/v1/wiki/attachments/{attachment.id}",
        "uploaded_by": {"id": attachment.uploaded_by_id, "name": attachment.uploaded_by_name},
        "created_at": attachment.created_at.isoformat(),
    }


def render_content(session: Session, content: str, customer_id: str | None) -> str:
    """Safe HTML of ``content``, with ``[[Titre]]`` links resolved among the pages of the same wiki."""
    titles = rendering.wiki_link_titles(content)
    pages_by_title: dict[str, str] = {}
    if titles:
        scope = (
            or_(Page.customer_id.is_(None), Page.customer_id == customer_id)
            if customer_id
            else Page.customer_id.is_(None)
        )
        rows = session.execute(
            select(Page.id, Page.title, Page.customer_id).where(scope, func.lower(Page.title).in_(titles))
        ).all()
        # A page of the customer's own wiki wins over a general page of the same title.
        for page_id, title, _customer in sorted(rows, key=lambda row: row[2] is not None):
            pages_by_title[rendering.normalise_title(title)] = page_id
    return rendering.render_markdown(content, rendering.RenderContext(customer_id, pages_by_title))


def page_view(session: Session, *, actor: dict[str, Any], page: Page) -> dict[str, Any]:
    """Everything a reader sees: metadata, content and its safe HTML, ancestors, sub-pages, attachments."""
    ancestors = []
    seen = {page.id}
    parent_id = page.parent_id
    while parent_id and parent_id not in seen:
        parent = session.get(Page, parent_id)
        if parent is None:
            break
        seen.add(parent.id)
        if policy.can_read(session, actor, parent):
            ancestors.insert(0, {"id": parent.id, "title": parent.title})
        parent_id = parent.parent_id
    children = session.scalars(
        select(Page)
        .where(Page.parent_id == page.id, policy.visible_pages_clause(session, actor))
        .order_by(Page.title)
    ).all()
    names = customer_names(session, {page.customer_id} if page.customer_id else set())
    return page_to_dict(page, customer_name=names.get(page.customer_id)) | {
        "content": page.content,
        "html": render_content(session, page.content, page.customer_id),
        "ancestors": ancestors,
        "children": [{"id": child.id, "title": child.title} for child in children],
        "attachments": [attachment_to_dict(attachment) for attachment in page.attachments],
        "can_edit": policy.can_write_for(session, actor, page.customer_id),
    }


# --- writing ----------------------------------------------------------------------------------------------------


def _event_data(page: Page) -> dict[str, Any]:
    data = page_to_dict(page)
    del data["customer_name"]  # display only; subscribers have the customer directory
    return data


def _add_event(session: Session, actor: dict[str, Any], event_type: str, page: Page, **extra: Any) -> None:
    add_event(
        session,
        OutboxMessage,
        Event(type=event_type, actor=user_actor(actor), data=_event_data(page) | extra),
    )


def _index_page(session: Session, page: Page) -> None:
    """Refresh the page's tag and ticket-reference rows from its current state."""
    session.execute(delete(PageTag).where(PageTag.page_id == page.id))
    session.execute(delete(TicketReference).where(TicketReference.page_id == page.id))
    for tag in {tag.casefold() for tag in page.tags or []}:
        session.add(PageTag(page_id=page.id, tag=tag))
    for number in rendering.ticket_numbers(page.content):
        session.add(TicketReference(page_id=page.id, ticket_number=number))


def _snapshot(page: Page, actor: dict[str, Any], comment: str | None) -> Revision:
    return Revision(
        page_id=page.id,
        number=page.revision,
        title=page.title,
        content=page.content,
        tags=list(page.tags or []),
        parent_id=page.parent_id,
        visible_to_customer=page.visible_to_customer,
        comment=comment,
        author_id=actor.get("id"),
        author_name=actor.get("name"),
        created_at=page.updated_at,
    )


def create_page(
    session: Session,
    *,
    actor: dict[str, Any],
    title: str,
    content: str = "",
    customer_id: str | None = None,
    parent_id: str | None = None,
    tags: list[str] | str | None = None,
    visible_to_customer: bool = False,
    comment: str | None = None,
) -> Page:
    """A new page and its first revision; ``wiki.page_created`` is committed with them."""
    customer_id = _uuid_or_none(customer_id, "client")
    parent_id = _uuid_or_none(parent_id, "page parente")
    if not policy.can_write_for(session, actor, customer_id):
        raise PermissionDenied("Vous ne pouvez pas créer de page dans ce wiki.")
    title = _clean_title(title)
    content = _clean_content(content)
    if visible_to_customer and customer_id is None:
        raise InvalidInput("Seule une page d'un client peut être montrée à ses contacts.")
    _check_title_free(session, customer_id, title)
    _check_parent(session, parent_id, customer_id, None)
    now = utcnow()
    page = Page(
        id=str(uuid.uuid4()),
        customer_id=customer_id,
        parent_id=parent_id,
        title=title,
        content=content,
        tags=_clean_tags(tags),
        visible_to_customer=bool(visible_to_customer),
        revision=1,
        created_at=now,
        created_by_id=actor["id"],
        created_by_name=actor.get("name"),
        updated_at=now,
        updated_by_id=actor["id"],
        updated_by_name=actor.get("name"),
    )
    session.add(page)
    session.flush()
    session.add(_snapshot(page, actor, _clean_comment(comment)))
    _index_page(session, page)
    session.flush()
    _add_event(session, actor, "wiki.page_created", page)
    return page


def get_page(session: Session, *, actor: dict[str, Any], page_id: str, for_update: bool = False) -> Page:
    """The page if ``actor`` may read it; otherwise NotFound, as for a page that does not exist."""
    try:
        uuid.UUID(str(page_id))
    except ValueError as exc:
        raise NotFound("Page introuvable.") from exc
    query = select(Page).where(Page.id == str(page_id))
    if for_update:
        query = query.with_for_update()
    page = session.scalar(query)
    if page is None or not policy.can_read(session, actor, page):
        raise NotFound("Page introuvable.")
    return page


def _revision(session: Session, page: Page, number: int) -> Revision:
    revision = session.scalar(
        select(Revision).where(Revision.page_id == page.id, Revision.number == int(number))
    )
    if revision is None:
        raise NotFound(f"La révision {number} de cette page n'existe pas.")
    return revision


def update_page(
    session: Session,
    *,
    actor: dict[str, Any],
    page_id: str,
    base_revision: int,
    title: str | None = None,
    content: str | None = None,
    tags: list[str] | str | None = None,
    parent_id: Any = _UNSET,
    visible_to_customer: bool | None = None,
    comment: str | None = None,
) -> Page:
    """Save a change made from revision ``base_revision``; a change based on an older revision is refused.

    When someone saved in between, nothing is overwritten: Conflict (409) carries the current revision and a
    three-way merge of the submitted content with it, for the editor to review and save again.
    """
    page = get_page(session, actor=actor, page_id=page_id, for_update=True)
    if not policy.can_write_for(session, actor, page.customer_id):
        raise PermissionDenied("Vous ne pouvez pas modifier cette page.")
    try:
        base_revision = int(base_revision)
    except (TypeError, ValueError) as exc:
        raise InvalidInput("La révision de départ est obligatoire.") from exc
    new_title = _clean_title(title) if title is not None else page.title
    new_content = _clean_content(content) if content is not None else page.content
    new_tags = _clean_tags(tags) if tags is not None else list(page.tags or [])
    new_parent = page.parent_id if parent_id is _UNSET else _uuid_or_none(parent_id, "page parente")
    new_visible = page.visible_to_customer if visible_to_customer is None else bool(visible_to_customer)
    if base_revision != page.revision:
        if base_revision < 1 or base_revision > page.revision:
            raise InvalidInput("Révision de départ inconnue.")
        base = _revision(session, page, base_revision)
        merge = merging.merge3(base.content, new_content, page.content)
        raise Conflict(
            f"{page.updated_by_name or 'Quelqu’un'} a enregistré cette page pendant que vous la modifiiez "
            f"(révision {page.revision}). Vérifiez la fusion proposée puis enregistrez à nouveau.",
            {
                "current_revision": page.revision,
                "current": page_to_dict(page) | {"content": page.content},
                "base_revision": base_revision,
                "merge": merge,
                "submitted": {"title": new_title, "content": new_content, "tags": new_tags},
            },
        )
    if new_visible and page.customer_id is None:
        raise InvalidInput("Seule une page d'un client peut être montrée à ses contacts.")
    if new_title != page.title:
        _check_title_free(session, page.customer_id, new_title, page.id)
    if new_parent != page.parent_id:
        _check_parent(session, new_parent, page.customer_id, page.id)
    changes: dict[str, Any] = {}
    for name, old, new in (
        ("title", page.title, new_title),
        ("tags", list(page.tags or []), new_tags),
        ("parent_id", page.parent_id, new_parent),
        ("visible_to_customer", page.visible_to_customer, new_visible),
    ):
        if old != new:
            changes[name] = {"old": old, "new": new}
    if new_content != page.content:
        # The event says that the content changed, not what it is: events leave the system.
        changes["content"] = {"changed": True}
    if not changes:
        return page
    page.title, page.content, page.tags = new_title, new_content, new_tags
    page.parent_id, page.visible_to_customer = new_parent, new_visible
    page.revision += 1
    page.updated_at = utcnow()
    page.updated_by_id, page.updated_by_name = actor["id"], actor.get("name")
    comment = _clean_comment(comment)
    session.add(_snapshot(page, actor, comment))
    _index_page(session, page)
    session.flush()
    _add_event(session, actor, "wiki.page_updated", page, changes=changes, comment=comment)
    return page


def restore_revision(
    session: Session, *, actor: dict[str, Any], page_id: str, number: int, base_revision: int
) -> Page:
    """Make revision ``number`` current again, as a new revision (history is never rewritten)."""
    page = get_page(session, actor=actor, page_id=page_id, for_update=True)
    revision = _revision(session, page, number)
    if int(base_revision) != page.revision:
        raise Conflict(
            "La page a changé depuis que vous l'avez ouverte. Rechargez l'historique avant de restaurer.",
            {"current_revision": page.revision},
        )
    parent_id = revision.parent_id
    if parent_id and session.get(Page, parent_id) is None:
        parent_id = None
    return update_page(
        session,
        actor=actor,
        page_id=page.id,
        base_revision=page.revision,
        title=revision.title,
        content=revision.content,
        tags=list(revision.tags or []),
        parent_id=parent_id,
        visible_to_customer=revision.visible_to_customer,
        comment=f"Restauration de la révision {revision.number}",
    )


# --- history ----------------------------------------------------------------------------------------------------


def _page_with_history(session: Session, actor: dict[str, Any], page_id: str) -> Page:
    page = get_page(session, actor=actor, page_id=page_id)
    if not policy.can_see_history(actor):
        raise PermissionDenied("L'historique des pages n'est pas accessible depuis le portail client.")
    return page


def list_revisions(session: Session, *, actor: dict[str, Any], page_id: str) -> dict[str, Any]:
    page = _page_with_history(session, actor, page_id)
    revisions = session.scalars(
        select(Revision).where(Revision.page_id == page.id).order_by(Revision.number.desc())
    ).all()
    return {"page": page_to_dict(page), "revisions": [revision_to_dict(revision) for revision in revisions]}


def get_revision(session: Session, *, actor: dict[str, Any], page_id: str, number: int) -> dict[str, Any]:
    page = _page_with_history(session, actor, page_id)
    revision = _revision(session, page, number)
    return revision_to_dict(revision, with_content=True) | {
        "page": page_to_dict(page),
        "html": render_content(session, revision.content, page.customer_id),
    }


def diff_revisions(
    session: Session, *, actor: dict[str, Any], page_id: str, from_number: int, to_number: int
) -> dict[str, Any]:
    """What changed between two revisions of a page (title, tags and content lines)."""
    page = _page_with_history(session, actor, page_id)
    old, new = _revision(session, page, from_number), _revision(session, page, to_number)
    return {
        "page": page_to_dict(page),
        "from": revision_to_dict(old),
        "to": revision_to_dict(new),
        "title_changed": old.title != new.title,
        "tags_changed": list(old.tags or []) != list(new.tags or []),
        "content": merging.diff_lines(old.content, new.content),
    }


# --- lists and search -------------------------------------------------------------------------------------------


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_MARKUP = re.compile(r"!?\[\[?|\]\]?(\([^)\s]*\))?|[#*_`>|~]+|^\s*[-+]\s", re.MULTILINE)


def _excerpt(content: str, words: list[str], length: int = 220) -> str:
    # A light strip of Markdown punctuation (the excerpt is shown as escaped text): parsing every result's Markdown
    # cost more than the search itself.
    text = " ".join(_MARKUP.sub(" ", content or "").split())
    lowered = text.casefold()
    position = min((lowered.find(word.casefold()) for word in words if word.casefold() in lowered), default=0)
    start = max(0, position - length // 3)
    excerpt = text[start : start + length]
    return ("…" if start else "") + excerpt + ("…" if start + length < len(text) else "")


def search_pages(
    session: Session,
    *,
    actor: dict[str, Any],
    query: str | None = None,
    customer_id: str | None = None,
    general: bool = False,
    tag: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """Pages ``actor`` may read, matching ``query`` in title or content, optionally of one customer or tag.

    On PostgreSQL the match is full-text with the French configuration (stemming: "imprimantes" finds
    "imprimante"), ranked; on SQLite (local runs) every word must appear in the title or the content.
    """
    limit = max(1, min(int(limit), MAX_RESULTS))
    statement = select(Page).where(policy.visible_pages_clause(session, actor))
    customer_id = _uuid_or_none(customer_id, "client")
    if customer_id:
        statement = statement.where(Page.customer_id == customer_id)
    elif general:
        statement = statement.where(Page.customer_id.is_(None))
    if tag:
        statement = statement.where(
            Page.id.in_(
                select(PageTag.page_id).where(PageTag.tag == " ".join(tag.split()).lstrip("#").casefold())
            )
        )
    words = re.findall(r"\w+", query or "")
    text = " ".join((query or "").split())
    if text and words:
        if is_postgres(session):
            # A stored, weighted (title A, content B), GIN-indexed column (migration 109aa1c97de8).
            document = literal_column("pages.search_vector")
            ts_query = func.websearch_to_tsquery(literal_column("'french'::regconfig"), text)
            title_match = Page.title.ilike(f"%{_escape_like(text)}%", escape="\\")
            statement = statement.where(or_(document.op("@@")(ts_query), title_match)).order_by(
                title_match.desc(), func.ts_rank(document, ts_query).desc(), Page.updated_at.desc()
            )
        else:
            for word in words:
                pattern = f"%{_escape_like(word.lower())}%"
                statement = statement.where(
                    or_(
                        func.lower(Page.title).like(pattern, escape="\\"),
                        func.lower(Page.content).like(pattern, escape="\\"),
                    )
                )
            statement = statement.order_by(Page.updated_at.desc())
    else:
        statement = statement.order_by(Page.title)
    pages = session.scalars(statement.limit(limit)).all()
    names = customer_names(session, {page.customer_id for page in pages if page.customer_id})
    return {
        "items": [
            page_to_dict(page, customer_name=names.get(page.customer_id))
            | {"excerpt": _excerpt(page.content, words)}
            for page in pages
        ]
    }


def list_tree(session: Session, *, actor: dict[str, Any], customer_id: str | None) -> dict[str, Any]:
    """The readable pages of one customer's wiki (or the general pages) as a tree, by title."""
    customer_id = _uuid_or_none(customer_id, "client")
    if customer_id and not policy.can_browse_customer(session, actor, customer_id):
        raise NotFound("Wiki introuvable.")
    if customer_id is None and actor.get("role") not in policy.STAFF_ROLES | {"sales"}:
        raise NotFound("Wiki introuvable.")
    scope = Page.customer_id == customer_id if customer_id else Page.customer_id.is_(None)
    pages = session.scalars(
        select(Page).where(scope, policy.visible_pages_clause(session, actor)).order_by(Page.title)
    ).all()
    ids = {page.id for page in pages}
    nodes = {page.id: page_to_dict(page) | {"children": []} for page in pages}
    roots = []
    for page in pages:
        # A page whose parent the reader cannot see is shown at the top level.
        if page.parent_id in ids:
            nodes[page.parent_id]["children"].append(nodes[page.id])
        else:
            roots.append(nodes[page.id])
    names = customer_names(session, {customer_id} if customer_id else set())
    return {
        "customer": {"id": customer_id, "name": names.get(customer_id) or customer_id}
        if customer_id
        else None,
        "pages": roots,
        "count": len(pages),
        "can_create": policy.can_write_for(session, actor, customer_id),
    }


def pages_citing_ticket(session: Session, *, actor: dict[str, Any], ticket_number: int) -> dict[str, Any]:
    """The readable pages that cite ticket ``#ticket_number``."""
    pages = session.scalars(
        select(Page)
        .join(TicketReference, TicketReference.page_id == Page.id)
        .where(
            TicketReference.ticket_number == int(ticket_number), policy.visible_pages_clause(session, actor)
        )
        .order_by(Page.updated_at.desc())
        .limit(MAX_RESULTS)
    ).all()
    names = customer_names(session, {page.customer_id for page in pages if page.customer_id})
    return {"items": [page_to_dict(page, customer_name=names.get(page.customer_id)) for page in pages]}


def preview(
    session: Session, *, actor: dict[str, Any], content: str, customer_id: str | None = None
) -> dict[str, Any]:
    """Safe HTML of a draft, as it will look once saved."""
    customer_id = _uuid_or_none(customer_id, "client")
    if not policy.can_write_for(session, actor, customer_id):
        raise PermissionDenied("Vous ne pouvez pas modifier de page dans ce wiki.")
    if len(content or "") > MAX_CONTENT_LENGTH:
        raise InvalidInput(f"Le contenu ne doit pas dépasser {MAX_CONTENT_LENGTH} caractères.")
    return {"html": render_content(session, content or "", customer_id)}
