"""Request and response shapes of the API (what OpenAPI documents)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class LoginIn(BaseModel):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class MeOut(BaseModel):
    id: str
    email: str | None
    name: str | None
    role: str
    customer_id: str | None


class TicketIn(BaseModel):
    title: str = Field(min_length=1, max_length=300)
    message: str = Field(min_length=1, max_length=100_000)


class PersonOut(BaseModel):
    id: str | None
    name: str | None
    email: str | None = None


class MessageOut(BaseModel):
    id: str
    author: PersonOut
    body: str
    internal: bool
    created_at: str


class TicketOut(BaseModel):
    id: str
    number: int
    title: str
    status: str
    status_label: str
    customer_id: str | None
    requester: PersonOut
    source: str
    created_at: str
    updated_at: str
    updated_by: PersonOut
    version: int
    messages: list[MessageOut] | None = None


class TicketPage(BaseModel):
    items: list[TicketOut]
    next_cursor: str | None
