"""Request and response shapes of the API (what OpenAPI documents)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class TicketIn(BaseModel):
    title: str = Field(min_length=1, max_length=300)
    message: str = Field(min_length=1, max_length=100_000)
    type: str | None = Field(None, description="Clé d'un type (voir /tickets/options)")
    priority: str | None = Field(None, description="Personnel uniquement")
    customer_id: str | None = Field(
        None, description="Personnel et revendeurs ; commercial : un de ses clients"
    )
    internal_note: str | None = Field(None, max_length=100_000, description="Personnel uniquement")
    assignees: list[str] | None = Field(None, description="Superviseurs uniquement : ids d'agents")


class TicketPatch(BaseModel):
    version: int = Field(description="La version lue ; si elle a changé entre-temps, réponse 409")
    title: str | None = Field(None, max_length=300)
    type: str | None = None
    priority: str | None = None
    status: str | None = None
    customer_id: str | None = None
    followers: list[str] | None = None
    assignees: list[str] | None = None


class MessageIn(BaseModel):
    body: str = Field(min_length=1, max_length=100_000)
    internal: bool = False


class PersonOut(BaseModel):
    id: str | None
    name: str | None
    email: str | None = None
    role: str | None = None


class AttachmentOut(BaseModel):
    id: str
    filename: str
    content_type: str
    size: int
    is_image: bool
    has_preview: bool


class MessageOut(BaseModel):
    id: str
    author: PersonOut
    body: str
    internal: bool
    created_at: str
    attachments: list[AttachmentOut] = []


class TicketOut(BaseModel):
    id: str
    number: int
    title: str
    status: str
    status_label: str | None = None
    status_category: str
    type: str | None
    type_label: str | None = None
    priority: str
    priority_label: str | None = None
    customer_id: str | None
    customer_name: str | None
    requester: PersonOut
    assignees: list[PersonOut]
    followers: list[PersonOut]
    source: str
    created_at: str
    created_by: PersonOut
    updated_at: str
    updated_by: PersonOut
    first_response_at: str | None
    resolution_due_at: str | None
    sla_paused: bool
    sla_breached: bool
    closed_at: str | None
    reopened_count: int
    version: int


class TicketDetailOut(TicketOut):
    messages: list[MessageOut] = []
    permissions: dict = {}


class TicketPage(BaseModel):
    items: list[TicketOut]
    next_cursor: str | None
    sort: str | None = None


class HistoryEntryOut(BaseModel):
    action: str
    field: str | None
    old: str | None
    new: str | None
    internal: bool
    actor: PersonOut
    at: str


class DashboardOut(BaseModel):
    new: int
    open: int
    pending: int
    closed: int
    breached: int
    counts: dict[str, int]
