"""The nameko face of the wiki service: entrypoints only, the logic is in the plain modules."""

from __future__ import annotations

from functools import cache

from comptoir_common.events import Event
from comptoir_common.nameko_ext import BlobStorage, Database, event_handler, rpc

from comptoir_wiki import attachments, customers, pages
from comptoir_wiki.models import OutboxMessage, ProcessedEvent
from comptoir_wiki.settings import WikiSettings


@cache
def _settings() -> WikiSettings:
    return WikiSettings()


class WikiService:
    name = "wiki"

    db = Database(outbox_model=OutboxMessage, inbox_model=ProcessedEvent)
    blobs = BlobStorage()

    @rpc
    def create_page(
        self,
        actor: dict,
        title: str,
        content: str = "",
        customer_id: str | None = None,
        parent_id: str | None = None,
        tags: list[str] | None = None,
        visible_to_customer: bool = False,
        comment: str | None = None,
    ) -> dict:
        page = pages.create_page(
            self.db.session,
            actor=actor,
            title=title,
            content=content,
            customer_id=customer_id,
            parent_id=parent_id,
            tags=tags,
            visible_to_customer=visible_to_customer,
            comment=comment,
        )
        return pages.page_view(self.db.session, actor=actor, page=page)

    @rpc
    def get_page(self, actor: dict, page_id: str) -> dict:
        page = pages.get_page(self.db.session, actor=actor, page_id=page_id)
        return pages.page_view(self.db.session, actor=actor, page=page)

    @rpc
    def update_page(self, actor: dict, page_id: str, base_revision: int, **changes) -> dict:
        allowed = {"title", "content", "tags", "parent_id", "visible_to_customer", "comment"}
        page = pages.update_page(
            self.db.session,
            actor=actor,
            page_id=page_id,
            base_revision=base_revision,
            **{key: value for key, value in changes.items() if key in allowed},
        )
        return pages.page_view(self.db.session, actor=actor, page=page)

    @rpc
    def restore_revision(self, actor: dict, page_id: str, number: int, base_revision: int) -> dict:
        page = pages.restore_revision(
            self.db.session, actor=actor, page_id=page_id, number=number, base_revision=base_revision
        )
        return pages.page_view(self.db.session, actor=actor, page=page)

    @rpc
    def list_revisions(self, actor: dict, page_id: str) -> dict:
        return pages.list_revisions(self.db.session, actor=actor, page_id=page_id)

    @rpc
    def get_revision(self, actor: dict, page_id: str, number: int) -> dict:
        return pages.get_revision(self.db.session, actor=actor, page_id=page_id, number=number)

    @rpc
    def diff_revisions(self, actor: dict, page_id: str, from_number: int, to_number: int) -> dict:
        return pages.diff_revisions(
            self.db.session, actor=actor, page_id=page_id, from_number=from_number, to_number=to_number
        )

    @rpc
    def search_pages(
        self,
        actor: dict,
        query: str | None = None,
        customer_id: str | None = None,
        general: bool = False,
        tag: str | None = None,
        limit: int = 50,
    ) -> dict:
        return pages.search_pages(
            self.db.session,
            actor=actor,
            query=query,
            customer_id=customer_id,
            general=general,
            tag=tag,
            limit=limit,
        )

    @rpc
    def list_tree(self, actor: dict, customer_id: str | None = None) -> dict:
        return pages.list_tree(self.db.session, actor=actor, customer_id=customer_id)

    @rpc
    def list_customers(self, actor: dict, query: str | None = None) -> list[dict]:
        return customers.list_customers(self.db.session, actor=actor, query=query)

    @rpc
    def pages_citing_ticket(self, actor: dict, ticket_number: int) -> dict:
        return pages.pages_citing_ticket(self.db.session, actor=actor, ticket_number=ticket_number)

    @rpc
    def preview(self, actor: dict, content: str, customer_id: str | None = None) -> dict:
        return pages.preview(self.db.session, actor=actor, content=content, customer_id=customer_id)

    @rpc
    def add_attachment(self, actor: dict, page_id: str, blob_key: str, filename: str | None = None) -> dict:
        attachment = attachments.add_attachment(
            self.db.session,
            actor=actor,
            blobs=self.blobs,
            page_id=page_id,
            blob_key=blob_key,
            filename=filename,
            max_size=_settings().max_attachment_bytes,
        )
        return pages.attachment_to_dict(attachment)

    @rpc
    def get_attachment(self, actor: dict, attachment_id: str) -> dict:
        return attachments.get_attachment(self.db.session, actor=actor, attachment_id=attachment_id)

    @event_handler("crm_sync", "customer.upserted")
    def on_customer_upserted(self, event: Event) -> None:
        customers.apply_customer_upserted(self.db.session, event.data, event.occurred_at)

    @event_handler("crm_sync", "customer.deactivated")
    def on_customer_deactivated(self, event: Event) -> None:
        customers.apply_customer_deactivated(self.db.session, event.data, event.occurred_at)
