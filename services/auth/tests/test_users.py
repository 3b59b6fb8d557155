"""Account administration: only admins, events without secrets, invitations, (de)activation and revocation."""

from __future__ import annotations

import pytest
from comptoir_auth import sessions, signup, users
from comptoir_auth.models import AccountMail, OutboxMessage
from comptoir_common.errors import Conflict, InvalidInput, PermissionDenied
from sqlalchemy import select

ADMIN_ACTIONS = {
    "list": lambda db, actor, target: users.list_users(db, actor),
    "get": lambda db, actor, target: users.admin_get_user(db, actor, target.id),
    "create": lambda db, actor, target: users.admin_create_user(
        db, actor, public_url="http://x", email="nouveau@client.example", name="Nouveau", role="agent"
    ),
    "update": lambda db, actor, target: users.update_user(db, actor, target.id, {"name": "Autre nom"}),
    "change_role": lambda db, actor, target: users.update_user(db, actor, target.id, {"role": "sales"}),
    "deactivate": lambda db, actor, target: users.deactivate_user(db, actor, target.id),
    "reactivate": lambda db, actor, target: users.reactivate_user(db, actor, target.id),
    "signups": lambda db, actor, target: signup.list_requests(db, actor),
}


@pytest.mark.parametrize("role", ["agent", "sales", "client", "reseller"])
@pytest.mark.parametrize("action", sorted(ADMIN_ACTIONS))
def test_only_admins_manage_accounts(db, role, action):
    target = users.create_user(db, email="cible@a6telecom.example", name="Cible", role="agent")
    actor = {"id": "someone", "role": role, "name": "Quelqu'un", "customer_id": "c-1"}
    with pytest.raises(PermissionDenied):
        ADMIN_ACTIONS[action](db, actor, target)


@pytest.mark.parametrize("action", sorted(ADMIN_ACTIONS))
def test_admin_may_do_every_account_action(db, admin, action):
    target = users.create_user(db, email="cible@a6telecom.example", name="Cible", role="agent")
    ADMIN_ACTIONS[action](db, admin, target)


def _events(db, event_type):
    return [
        row.payload for row in db.scalars(select(OutboxMessage).where(OutboxMessage.event_type == event_type))
    ]


def test_created_user_gets_an_invitation_and_an_event_without_secrets(db, admin):
    user = users.admin_create_user(
        db,
        admin,
        public_url="https://support.example",
        email="Tech@A6telecom.example",
        name="Tech",
        role="agent",
    )
    assert user.email == "tech@a6telecom.example" and user.password_hash is None
    mail = db.scalars(select(AccountMail).where(AccountMail.recipient == user.email)).one()
    assert mail.kind == "invitation" and mail.context["link"].startswith(
        "https://support.example/invitation/"
    )
    event = next(e for e in _events(db, "user.created") if e["data"]["id"] == user.id)
    assert set(event["data"]) == {"id", "email", "name", "phone", "role", "customer_id", "language", "active"}
    token = mail.context["link"].rsplit("/", 1)[1]
    assert token not in str(event) and all(token not in str(e) for e in _events(db, "audit.recorded"))
    users.accept_invitation(db, token=token, password="Une-phrase-assez-longue")
    with pytest.raises(InvalidInput):
        users.accept_invitation(db, token=token, password="Une-autre-phrase-longue")


def test_email_is_unique_whatever_its_case(db, admin):
    users.create_user(db, email="dup@client.example", name="A", role="agent")
    with pytest.raises(Conflict):
        users.admin_create_user(
            db, admin, public_url="http://x", email="DUP@client.example", name="B", role="agent"
        )


def test_client_must_belong_to_a_customer(db, admin):
    with pytest.raises(InvalidInput, match="rattaché à une société"):
        users.admin_create_user(
            db, admin, public_url="http://x", email="c@client.example", name="C", role="client"
        )


def test_list_filters_by_text_role_customer_and_state(db, admin):
    users.create_user(db, email="alice@client.example", name="Alice Dupont", role="client", customer_id="c-1")
    bob = users.create_user(
        db, email="bob@client.example", name="Bob Durand", role="client", customer_id="c-2"
    )
    users.create_user(db, email="tom@a6telecom.example", name="Tom", role="agent", phone="04 72 00 00 01")
    users.deactivate_user(db, admin, bob.id)
    names = lambda **f: [u["name"] for u in users.list_users(db, admin, **f)["items"]]  # noqa: E731
    assert names(q="DUPONT") == ["Alice Dupont"]
    assert names(q="04 72") == ["Tom"]
    assert names(role="client") == ["Alice Dupont", "Bob Durand"]
    assert names(customer_id="c-2") == ["Bob Durand"]
    assert "Bob Durand" not in names(active=True) and names(active=False) == ["Bob Durand"]


def test_deactivation_revokes_sessions_and_is_published(db, admin):
    user = users.create_user(db, email="x@client.example", name="X", role="client", customer_id="c-1")
    open_session = sessions.create(db, user, kind="web")
    users.deactivate_user(db, admin, user.id)
    assert open_session.revoked_at is not None
    assert any(
        e["data"]["id"] == user.id and e["data"]["active"] is False for e in _events(db, "user.deactivated")
    )
    revoked = [e for e in _events(db, "user.sessions_revoked") if e["data"]["user_id"] == user.id]
    assert revoked[0]["data"]["sessions"][0]["id"] == open_session.id
    state = sessions.revocation_state(db)
    assert user.id in state["inactive_user_ids"]
    assert open_session.id in {s["id"] for s in state["revoked_sessions"]}
    users.reactivate_user(db, admin, user.id)
    assert user.id not in sessions.revocation_state(db)["inactive_user_ids"]


def test_role_change_ends_sessions_and_is_audited(db, admin):
    user = users.create_user(db, email="y@a6telecom.example", name="Y", role="agent")
    open_session = sessions.create(db, user, kind="api")
    users.update_user(db, admin, user.id, {"role": "sales"})
    assert open_session.revoked_at is not None
    updated = next(e for e in _events(db, "user.updated") if e["data"]["id"] == user.id)
    assert updated["data"]["changes"]["role"] == {"old": "agent", "new": "sales"}
    kinds = [e["data"]["kind"] for e in _events(db, "audit.recorded") if e["data"]["user_id"] == user.id]
    assert "role.changed" in kinds


def test_admin_cannot_lock_themself_out(db, admin):
    with pytest.raises(InvalidInput):
        users.deactivate_user(db, admin, admin["id"])
    with pytest.raises(InvalidInput):
        users.update_user(db, admin, admin["id"], {"role": "agent"})
