"""Sign-in rules: enumeration, brute-force limits, second factor, trusted browsers, reset links, password policy."""

from __future__ import annotations

from datetime import timedelta

import pytest
from comptoir_auth import mails, sessions, signin, signup, throttle, users
from comptoir_auth.models import AccountMail, AuditEntry, LoginChallenge, LoginThrottle, OutboxMessage
from comptoir_auth.passwords import check_password_policy
from comptoir_common.errors import AuthenticationFailed, InvalidInput, PermissionDenied, TooManyRequests
from sqlalchemy import select

PASSWORD = "Trois-chats-dorment-au-soleil"
CLIENT = {"ip": "192.0.2.10", "user_agent": "pytest-navigateur"}


def _user(db, email="claire@client.example", role="client", **extra):
    return users.create_user(
        db, email=email, name="Claire Martin", role=role, password=PASSWORD, customer_id="c-1", **extra
    )


def _refusal(call) -> Exception:
    with pytest.raises(signin.Refused) as caught:
        call()
    return caught.value.error


def _last_code(db) -> str:
    mail = db.scalars(
        select(AccountMail).where(AccountMail.kind == "login_code").order_by(AccountMail.created_at.desc())
    ).first()
    return mail.context["code"]


def test_unknown_email_and_wrong_password_get_the_same_answer(db):
    _user(db)
    unknown = _refusal(
        lambda: signin.login(db, email="personne@client.example", password=PASSWORD, client=CLIENT)
    )
    wrong = _refusal(
        lambda: signin.login(db, email="claire@client.example", password="pas-le-bon-mot", client=CLIENT)
    )
    assert type(unknown) is type(wrong) is AuthenticationFailed
    assert str(unknown) == str(wrong) == signin.LOGIN_FAILED_MESSAGE


def test_deactivated_user_cannot_sign_in_even_with_the_right_password(db, admin):
    user = _user(db)
    users.deactivate_user(db, admin, user.id)
    error = _refusal(lambda: signin.login(db, email=user.email, password=PASSWORD, client=CLIENT))
    assert str(error) == signin.LOGIN_FAILED_MESSAGE


def test_sign_in_creates_a_session_and_an_audit_line_with_address_and_browser(db):
    user = _user(db)
    result = signin.login(db, email="CLAIRE@client.example ", password=PASSWORD, client=CLIENT)
    assert result["status"] == "signed_in" and result["user"]["id"] == user.id
    entry = db.scalars(select(AuditEntry).where(AuditEntry.kind == "login.succeeded")).one()
    assert (entry.ip, entry.user_agent, entry.user_id) == ("192.0.2.10", "pytest-navigateur", user.id)
    event = db.scalars(select(OutboxMessage).where(OutboxMessage.event_type == "audit.recorded")).first()
    assert PASSWORD not in str(event.payload)


def test_account_is_locked_with_growing_delays_and_a_clear_message(db):
    _user(db)
    for _ in range(throttle.FREE_FAILURES["account"] - 1):
        assert isinstance(
            _refusal(lambda: signin.login(db, email="claire@client.example", password="x" * 12)),
            AuthenticationFailed,
        )
    locked = _refusal(lambda: signin.login(db, email="claire@client.example", password="x" * 12))
    assert (
        isinstance(locked, TooManyRequests)
        and str(locked) == "Trop de tentatives de connexion. Réessayez dans 1 minute."
    )
    # Even the right password is refused while locked.
    again = _refusal(lambda: signin.login(db, email="claire@client.example", password=PASSWORD))
    assert isinstance(again, TooManyRequests)
    row = db.get(LoginThrottle, throttle.account_key("claire@client.example"))
    row.locked_until = row.locked_until - timedelta(minutes=5)  # the lock has run out
    longer = _refusal(lambda: signin.login(db, email="claire@client.example", password="x" * 12))
    assert str(longer) == "Trop de tentatives de connexion. Réessayez dans 2 minutes."


def test_unknown_account_is_locked_exactly_like_a_known_one(db):
    for _ in range(throttle.FREE_FAILURES["account"] - 1):
        _refusal(lambda: signin.login(db, email="inconnu@client.example", password="x" * 12))
    assert isinstance(
        _refusal(lambda: signin.login(db, email="inconnu@client.example", password="x" * 12)), TooManyRequests
    )


def test_address_is_locked_after_many_failures_on_different_accounts(db):
    client = {"ip": "198.51.100.7", "user_agent": "robot"}
    for n in range(throttle.FREE_FAILURES["ip"]):
        error = _refusal(
            lambda n=n: signin.login(db, email=f"cible{n}@client.example", password="x" * 12, client=client)
        )
    assert isinstance(error, TooManyRequests)
    locks = throttle.list_locks(db)
    assert any(lock["key"] == "ip:198.51.100.7" for lock in locks)


def _two_factor_user(db):
    user = _user(db, email="deux@client.example")
    user.two_factor_enabled = True
    return user


def test_second_factor_code_signs_in_once(db):
    _two_factor_user(db)
    started = signin.login(db, email="deux@client.example", password=PASSWORD, client=CLIENT)
    assert started["status"] == "code_required" and "session" not in started
    code = _last_code(db)
    challenge = db.get(LoginChallenge, started["challenge_id"])
    assert code not in challenge.code_hash  # stored hashed
    done = signin.verify_code(db, challenge_id=started["challenge_id"], code=code, client=CLIENT)
    assert done["status"] == "signed_in"
    reuse = _refusal(lambda: signin.verify_code(db, challenge_id=started["challenge_id"], code=code))
    assert str(reuse) == signin.CODE_INVALID_MESSAGE


def test_second_factor_code_expires_after_ten_minutes(db):
    _two_factor_user(db)
    started = signin.login(db, email="deux@client.example", password=PASSWORD)
    code = _last_code(db)
    challenge = db.get(LoginChallenge, started["challenge_id"])
    challenge.expires_at = challenge.expires_at - timedelta(minutes=10, seconds=1)
    error = _refusal(lambda: signin.verify_code(db, challenge_id=started["challenge_id"], code=code))
    assert "expiré" in str(error)


def test_second_factor_allows_five_attempts(db):
    _two_factor_user(db)
    started = signin.login(db, email="deux@client.example", password=PASSWORD)
    code = _last_code(db)
    wrong = "000000" if code != "000000" else "111111"
    messages = [
        str(_refusal(lambda: signin.verify_code(db, challenge_id=started["challenge_id"], code=wrong)))
        for _ in range(5)
    ]
    assert messages[0] == "Code incorrect. Il vous reste 4 essais."
    assert "Trop d'essais" in messages[-1]
    # The right code no longer works once the attempts are spent.
    error = _refusal(lambda: signin.verify_code(db, challenge_id=started["challenge_id"], code=code))
    assert str(error) == signin.CODE_INVALID_MESSAGE


def test_resending_a_code_is_throttled(db):
    _two_factor_user(db)
    started = signin.login(db, email="deux@client.example", password=PASSWORD)
    with pytest.raises(TooManyRequests, match="Vous pourrez en demander un autre dans"):
        signin.resend_code(db, challenge_id=started["challenge_id"])
    challenge = db.get(LoginChallenge, started["challenge_id"])
    challenge.code_sent_at -= timedelta(seconds=61)
    first = _last_code(db)
    signin.resend_code(db, challenge_id=started["challenge_id"])
    second = _last_code(db)
    assert challenge.sends == 2
    # The old code died with the new one (unless chance gave the same digits).
    if first != second:
        assert isinstance(
            _refusal(lambda: signin.verify_code(db, challenge_id=challenge.id, code=first)),
            AuthenticationFailed,
        )
    challenge.code_sent_at -= timedelta(seconds=61)
    signin.resend_code(db, challenge_id=challenge.id)
    challenge.code_sent_at -= timedelta(seconds=61)
    with pytest.raises(TooManyRequests, match="Trop de codes envoyés"):
        signin.resend_code(db, challenge_id=challenge.id)


def test_trusted_browser_skips_the_code_until_revoked(db, admin):
    user = _two_factor_user(db)
    started = signin.login(db, email=user.email, password=PASSWORD)
    done = signin.verify_code(
        db, challenge_id=started["challenge_id"], code=_last_code(db), trust_device=True
    )
    device_token = done["device_token"]
    again = signin.login(db, email=user.email, password=PASSWORD, device_token=device_token)
    assert again["status"] == "signed_in"
    assert len(signin.list_devices(db, user.id)) == 1
    assert signin.revoke_devices(db, actor=admin, user_id=user.id) == 1
    after = signin.login(db, email=user.email, password=PASSWORD, device_token=device_token)
    assert after["status"] == "code_required"


def test_another_person_cannot_revoke_my_trusted_browsers(db):
    user = _user(db)
    other = _user(db, email="autre@client.example")
    with pytest.raises(PermissionDenied):
        signin.revoke_devices(db, actor={"id": other.id, "role": "client"}, user_id=user.id)


def test_role_policy_enforces_the_second_factor(db, admin):
    from comptoir_auth import security_policy

    _user(db, email="tech@a6telecom.example", role="agent")
    security_policy.set_role_policy(db, admin, role="agent", two_factor_required=True)
    started = signin.login(db, email="tech@a6telecom.example", password=PASSWORD)
    assert started["status"] == "code_required"


def test_reset_link_is_single_use_and_ends_sessions(db):
    user = _user(db)
    session_row = sessions.create(db, user, kind="web")
    answer = signin.request_password_reset(db, email=user.email, public_url="https://support.example")
    unknown = signin.request_password_reset(
        db, email="personne@client.example", public_url="https://support.example"
    )
    assert answer == unknown
    link = db.scalars(select(AccountMail).where(AccountMail.kind == "password_reset")).one().context["link"]
    token = link.rsplit("/", 1)[1]
    signin.reset_password(db, token=token, password="Un-tout-nouveau-mot-de-passe")
    assert session_row.revoked_at is not None
    with pytest.raises(InvalidInput, match="n'est plus valable"):
        signin.reset_password(db, token=token, password="Encore-un-autre-mot-de-passe")
    assert (
        signin.login(db, email=user.email, password="Un-tout-nouveau-mot-de-passe")["status"] == "signed_in"
    )


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("court", "au moins 12 caractères"),
        ("motdepasse123", "trop courant"),
        ("Azertyuiop2026!", "trop courant"),
        ("aaaaaaaaaaaaaaaa", "trop courant"),
        ("Claire Martin 2026 !", "adresse e-mail"),
    ],
)
def test_password_policy_refuses_short_common_and_personal_passwords(password, message):
    with pytest.raises(InvalidInput, match=message):
        check_password_policy(password, email="claire.martin@client.example", name="Claire Martin")


def test_password_policy_accepts_a_passphrase():
    check_password_policy("cheval correct batterie agrafe", email="claire@client.example", name="Claire")


def test_account_mail_context_is_wiped_once_handed_to_the_notifier(db):
    mail = mails.queue_account_mail(
        db, kind="login_code", recipient="x@client.example", context={"code": "123456"}
    )
    sent = []
    assert mails.dispatch_pending(db, lambda *args: sent.append(args)) >= 1
    assert any(args[3] == mail.id and args[2]["code"] == "123456" for args in sent)
    assert mail.context is None and mail.handed_over_at is not None


def test_account_mail_stays_pending_when_the_notifier_fails(db):
    mail = mails.queue_account_mail(
        db, kind="invitation", recipient="x@client.example", context={"link": "l"}
    )

    def down(*args):
        raise TimeoutError("the notifier did not answer")

    mails.dispatch_pending(db, down)
    assert mail.handed_over_at is None and mail.context == {"link": "l"} and "TimeoutError" in mail.last_error


def test_signup_answer_is_the_same_for_known_and_unknown_addresses(db, admin):
    _user(db)
    known = signup.request_signup(db, email="claire@client.example", name="Claire", company="Client SA")
    unknown = signup.request_signup(db, email="nouveau@client.example", name="Nouveau", company="Client SA")
    assert known == unknown
    pending = signup.list_requests(db, admin)
    assert {r["email"] for r in pending} == {"claire@client.example", "nouveau@client.example"}
    assert next(r for r in pending if r["email"] == "claire@client.example")["existing_user_id"]


def test_repeated_sign_up_requests_neither_flood_the_inbox_nor_the_list(db, admin):
    from comptoir_auth.models import AccountMail

    client = {"ip": "203.0.113.9", "user_agent": "x"}
    first = signup.request_signup(db, email="rep@client.example", name="Rep", client=client)
    again = signup.request_signup(db, email="REP@client.example", name="Rep", client=client)
    assert first == again
    assert len(signup.list_requests(db, admin)) == 1
    assert (
        len(db.scalars(select(AccountMail).where(AccountMail.recipient == "rep@client.example")).all()) == 1
    )
    for n in range(signup.MAX_REQUESTS_PER_ADDRESS - 1):
        signup.request_signup(db, email=f"n{n}@client.example", name="N", client=client)
    with pytest.raises(TooManyRequests, match="Réessayez dans une heure"):
        signup.request_signup(db, email="last@client.example", name="N", client=client)
