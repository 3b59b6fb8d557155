"""Tables of the auth service.

Secrets are never stored in clear: invitation/reset tokens, second-factor codes and trusted-device tokens are kept
as SHA-256 (random 256-bit tokens) or argon2 (6-digit codes) hashes. The only plaintext secret at rest is the
context of an account mail waiting to be handed to the notifier (``account_mails.context``), wiped once handed over.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from comptoir_common.db import declarative_base_for, utcnow
from comptoir_common.outbox import InboxMixin, OutboxMixin
from sqlalchemy import JSON, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

Base = declarative_base_for()

ROLES = ("admin", "agent", "sales", "client", "reseller")
STAFF_ROLES = ("admin", "agent", "sales")
CUSTOMER_ROLES = ("client", "reseller")


def new_id() -> str:
    return str(uuid.uuid4())


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # Stored lower-cased: the unique index then makes addresses unique whatever their case.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(50), default=None)
    role: Mapped[str] = mapped_column(String(20))
    customer_id: Mapped[str | None] = mapped_column(String(36), default=None, index=True)
    language: Mapped[str] = mapped_column(String(10), default="fr")
    active: Mapped[bool] = mapped_column(default=True)
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Chosen by the user; an admin may also enforce it for a whole role (RolePolicy).
    two_factor_enabled: Mapped[bool] = mapped_column(default=False)
    password_changed_at: Mapped[datetime | None] = mapped_column(default=None)
    last_login_at: Mapped[datetime | None] = mapped_column(default=None)
    # Tokens issued before this instant are refused (sign-out everywhere, deactivation, role change).
    sessions_valid_after: Mapped[datetime | None] = mapped_column(default=None)


class Session(Base):
    """A signed-in session (web cookie or API token); its id travels in the gateway's signed token as ``sid``."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # web, api
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(300), default=None)


class AccountToken(Base):
    """A single-use link sent by mail: invitation (choose a password) or password reset."""

    __tablename__ = "account_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(String(36), index=True)
    purpose: Mapped[str] = mapped_column(String(20))  # invitation, reset
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class LoginChallenge(Base):
    """A pending second-factor sign-in: the password was right, a 6-digit code was mailed."""

    __tablename__ = "login_challenges"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # random, known only to the browser
    user_id: Mapped[str] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    code_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    code_sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    attempts: Mapped[int] = mapped_column(default=0)
    sends: Mapped[int] = mapped_column(default=1)
    used_at: Mapped[datetime | None] = mapped_column(default=None)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(300), default=None)


class TrustedDevice(Base):
    """A browser trusted for 30 days after a second-factor sign-in (its token is in a signed cookie)."""

    __tablename__ = "trusted_devices"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(String(36), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class LoginThrottle(Base):
    """Failed sign-ins per key (``account:<email>`` or ``ip:<address>``) and the lock they earned."""

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    last_failure_at: Mapped[datetime | None] = mapped_column(default=None)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)


class RolePolicy(Base):
    """Admin settings per role (second factor enforced)."""

    __tablename__ = "role_policies"

    role: Mapped[str] = mapped_column(String(20), primary_key=True)
    two_factor_required: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SignupRequest(Base):
    """A public "demande de création de compte", waiting for an admin's decision."""

    __tablename__ = "signup_requests"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), index=True)
    name: Mapped[str] = mapped_column(String(200))
    company: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str | None] = mapped_column(String(50), default=None)
    message: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending, approved, rejected
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    decided_by: Mapped[str | None] = mapped_column(String(36), default=None)
    decision_note: Mapped[str | None] = mapped_column(Text, default=None)
    user_id: Mapped[str | None] = mapped_column(String(36), default=None)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)


class AuditEntry(Base):
    """One security-relevant fact: sign-in, failure, code, password or role change, (de)activation."""

    __tablename__ = "audit_log"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(50))
    user_id: Mapped[str | None] = mapped_column(String(36), default=None)
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    actor_id: Mapped[str | None] = mapped_column(String(36), default=None)
    actor_name: Mapped[str | None] = mapped_column(String(200), default=None)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(300), default=None)
    details: Mapped[dict] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_audit_log_at", "at"), Index("ix_audit_log_user_id", "user_id"))


class AccountMail(Base):
    """An account mail to hand to the notifier by RPC (a command outbox: written with the state change).

    ``context`` holds the link or code while the mail waits; it is emptied once the notifier has queued the mail,
    which it does at most once per ``id``.
    """

    __tablename__ = "account_mails"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(40))
    recipient: Mapped[str] = mapped_column(String(320))
    context: Mapped[dict | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    handed_over_at: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)

    __table_args__ = (
        Index(
            "ix_account_mails_pending",
            "created_at",
            postgresql_where=text("handed_over_at IS NULL"),
            sqlite_where=text("handed_over_at IS NULL"),
        ),
    )


class OutboxMessage(OutboxMixin, Base):
    pass


class ProcessedEvent(InboxMixin, Base):
    pass
