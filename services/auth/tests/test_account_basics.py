"""Account basics and the sign-in entrypoint (domain functions and the service class over a real database)."""

from __future__ import annotations

import pytest
from comptoir_auth import signin, users
from comptoir_auth.models import OutboxMessage, ProcessedEvent, User
from comptoir_auth.service import AuthService
from comptoir_common.errors import AuthenticationFailed, Conflict, InvalidInput
from comptoir_testing.fixtures import WorkerDatabaseDouble
from nameko.testing.services import worker_factory

PASSWORD = "Un-mot-de-passe-solide"


def _make(session, email="Claire.Martin@Client.example", role="client", customer_id="c-1", **kwargs):
    return users.create_user(
        session,
        email=email,
        name="Claire Martin",
        role=role,
        password=PASSWORD,
        customer_id=customer_id,
        **kwargs,
    )


def test_email_is_unique_whatever_its_case(session):
    user = _make(session)
    assert user.email == "claire.martin@client.example"
    with pytest.raises(Conflict):
        _make(session, email="CLAIRE.MARTIN@client.example")


def test_creation_publishes_user_created_without_secrets(session):
    user = _make(session)
    [row] = session.query(OutboxMessage).all()
    assert row.event_type == "user.created"
    assert row.payload["data"]["id"] == user.id
    assert "password" not in str(row.payload) and "argon2" not in str(row.payload)


def test_password_is_hashed_with_argon2id(session):
    user = _make(session)
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"email": "pas-une-adresse"}, "Adresse e-mail invalide."),
        ({"role": "superuser"}, "Rôle inconnu"),
        ({"customer_id": None}, "rattaché à une société"),
    ],
)
def test_invalid_accounts_are_refused_with_a_french_message(session, kwargs, message):
    with pytest.raises(InvalidInput, match=message):
        _make(session, **kwargs)


def test_short_password_is_refused(session):
    with pytest.raises(InvalidInput, match="au moins 12 caractères"):
        users.create_user(session, email="a@b.example", name="A", role="agent", password="court")


def test_sign_in_accepts_the_right_password_in_any_email_case(session):
    user = _make(session)
    result = signin.login(session, email=" CLAIRE.martin@client.example ", password=PASSWORD)
    assert result["user"]["id"] == user.id


def test_unknown_email_wrong_password_and_deactivated_account_get_the_same_answer(session):
    user = _make(session)
    answers = set()
    for email, password in (("inconnu@client.example", PASSWORD), (user.email, "mauvais-mot-de-passe")):
        with pytest.raises(signin.Refused) as refused:
            signin.login(session, email=email, password=password)
        assert isinstance(refused.value.error, AuthenticationFailed)
        answers.add(str(refused.value.error))
    user.active = False
    with pytest.raises(signin.Refused) as refused:
        signin.login(session, email=user.email, password=PASSWORD)
    answers.add(str(refused.value.error))
    assert answers == {signin.LOGIN_FAILED_MESSAGE}


def test_service_login_entrypoint_commits_and_returns_the_public_view(session):
    _make(session)
    database = WorkerDatabaseDouble(session, OutboxMessage, ProcessedEvent)
    service = worker_factory(AuthService, db=database)
    result = service.login(email="claire.martin@client.example", password=PASSWORD)
    assert result["status"] == "signed_in" and result["user"]["role"] == "client"
    assert "password_hash" not in str(result)
    assert database.commits == 1
    with pytest.raises(AuthenticationFailed):
        service.login(email="claire.martin@client.example", password="faux")
    # The refusal's records (failure count, audit line) are committed before the error goes back.
    assert database.commits == 2
    assert session.query(User).count() == 1
