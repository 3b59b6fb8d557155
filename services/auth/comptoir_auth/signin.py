"""Sign-in: password, brute-force limits, second factor by email, trusted browsers, password reset and change.

Functions that must keep a record of a refusal (a failure count, an audit line) raise :class:`Refused`, which
carries the error for the caller: the service commits the record, then raises the error.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from comptoir_common.db import utcnow
from comptoir_common.errors import (
    AuthenticationFailed,
    ComptoirError,
    InvalidInput,
    NotFound,
    TooManyRequests,
)
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from comptoir_auth import audit, mails, sessions, throttle, tokens
from comptoir_auth.models import LoginChallenge, RolePolicy, TrustedDevice, User
from comptoir_auth.passwords import (
    check_password_policy,
    hash_password,
    needs_rehash,
    verify_password,
)
from comptoir_auth.policy import require_actor, require_admin
from comptoir_auth.users import get_user, normalise_email, set_password, user_to_dict

LOGIN_FAILED_MESSAGE = "Adresse e-mail ou mot de passe incorrect."
CODE_LIFETIME = timedelta(minutes=10)
CODE_ATTEMPTS = 5
RESEND_INTERVAL = timedelta(seconds=60)
MAX_SENDS = 3
DEVICE_LIFETIME = timedelta(days=30)
RESET_INTERVAL = timedelta(minutes=1)
CODE_INVALID_MESSAGE = "Ce code n'est plus valable. Reconnectez-vous pour en recevoir un nouveau."
RESET_ANSWER = "Si un compte correspond à cette adresse, un e-mail contenant un lien de réinitialisation vient d'être envoyé."


class Refused(Exception):
    """A refusal whose records must be committed before ``error`` goes back to the caller."""

    def __init__(self, error: ComptoirError):
        super().__init__(str(error))
        self.error = error


def _hash_device_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def two_factor_required(session: Session, user: User) -> bool:
    if user.two_factor_enabled:
        return True
    policy = session.get(RolePolicy, user.role)
    return bool(policy and policy.two_factor_required)


def _trusted_device(session: Session, user: User, device_token: str | None) -> TrustedDevice | None:
    if not device_token:
        return None
    device = session.scalar(
        select(TrustedDevice).where(TrustedDevice.token_hash == _hash_device_token(device_token))
    )
    if device is None or device.user_id != user.id or device.revoked_at or device.expires_at <= utcnow():
        return None
    return device


def _signed_in(session: Session, user: User, kind: str, client: dict | None, **extra: Any) -> dict[str, Any]:
    row = sessions.create(session, user, kind=kind, client=client)
    throttle.record_success(session, user.email)
    audit.record(
        session,
        "login.succeeded",
        user=user,
        actor=_self(user),
        client=client,
        details={"kind": kind} | extra,
    )
    return {"status": "signed_in", "user": user_to_dict(user), "session": sessions.session_to_dict(row)}


def _self(user: User) -> dict[str, Any]:
    return {"id": user.id, "role": user.role, "name": user.name}


def _new_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


def _mail_code(session: Session, user: User, code: str) -> None:
    mails.queue_account_mail(
        session,
        kind="login_code",
        recipient=user.email,
        context={"name": user.name, "code": code, "valid_minutes": int(CODE_LIFETIME.total_seconds() // 60)},
    )


def _email_hint(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}{'•' * max(1, min(len(local) - 1, 6))}@{domain}"


def login(
    session: Session,
    *,
    email: str,
    password: str,
    kind: str = "web",
    client: dict[str, Any] | None = None,
    device_token: str | None = None,
) -> dict[str, Any]:
    """Check the password; sign in, or mail a code when the second factor applies.

    Unknown address, wrong password and deactivated account take one hash verification and give the same answer,
    so sign-in reveals nothing about which accounts exist.
    """
    if kind not in sessions.LIFETIMES:
        raise InvalidInput("Type de session inconnu.")
    email = normalise_email(email)
    ip, _ = audit.client_info(client)
    try:
        throttle.check(session, email, ip)
    except TooManyRequests as exc:
        user = session.scalar(select(User).where(User.email == email))
        audit.record(session, "login.locked", user=user, email=email, client=client)
        raise Refused(exc) from exc
    user = session.scalar(select(User).where(User.email == email))
    password_ok = verify_password(user.password_hash if user else None, password or "")
    if user is None or not password_ok or not user.active:
        locked_for = throttle.record_failure(session, email, ip)
        reason = "unknown" if user is None else ("inactive" if not user.active else "password")
        audit.record(
            session, "login.failed", user=user, email=email, client=client, details={"reason": reason}
        )
        if locked_for:
            raise Refused(
                TooManyRequests(throttle.lock_message(locked_for), {"retry_after": int(locked_for)})
            )
        raise Refused(AuthenticationFailed(LOGIN_FAILED_MESSAGE))
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    if two_factor_required(session, user):
        device = _trusted_device(session, user, device_token)
        if device is None:
            return _start_challenge(session, user, kind, client)
        device.last_used_at = utcnow()
        return _signed_in(session, user, kind, client, second_factor="trusted_device")
    return _signed_in(session, user, kind, client)


def _start_challenge(session: Session, user: User, kind: str, client: dict | None) -> dict[str, Any]:
    ip, user_agent = audit.client_info(client)
    code = _new_code()
    now = utcnow()
    challenge = LoginChallenge(
        id=secrets.token_urlsafe(32),
        user_id=user.id,
        kind=kind,
        code_hash=hash_password(code),
        created_at=now,
        code_sent_at=now,
        expires_at=now + CODE_LIFETIME,
        ip=ip,
        user_agent=user_agent,
    )
    session.add(challenge)
    _mail_code(session, user, code)
    audit.record(session, "code.sent", user=user, actor=_self(user), client=client)
    return {
        "status": "code_required",
        "challenge_id": challenge.id,
        "expires_at": challenge.expires_at.isoformat(),
        "email_hint": _email_hint(user.email),
    }


def _live_challenge(session: Session, challenge_id: str) -> tuple[LoginChallenge, User]:
    challenge = session.get(LoginChallenge, challenge_id or "", with_for_update=True)
    if challenge is None or challenge.used_at is not None or challenge.attempts >= CODE_ATTEMPTS:
        raise Refused(AuthenticationFailed(CODE_INVALID_MESSAGE))
    user = session.get(User, challenge.user_id)
    if user is None or not user.active:
        raise Refused(AuthenticationFailed(CODE_INVALID_MESSAGE))
    if challenge.expires_at <= utcnow():
        audit.record(session, "code.expired", user=user, actor=_self(user))
        challenge.attempts = CODE_ATTEMPTS
        raise Refused(AuthenticationFailed("Ce code a expiré. Reconnectez-vous pour en recevoir un nouveau."))
    return challenge, user


def verify_code(
    session: Session,
    *,
    challenge_id: str,
    code: str,
    trust_device: bool = False,
    client: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Finish a second-factor sign-in; optionally trust this browser for 30 days (returns ``device_token``)."""
    challenge, user = _live_challenge(session, challenge_id)
    code = "".join(ch for ch in str(code or "") if ch.isdigit())
    challenge.attempts += 1
    if len(code) != 6 or not verify_password(challenge.code_hash, code):
        left = CODE_ATTEMPTS - challenge.attempts
        audit.record(
            session,
            "code.failed",
            user=user,
            actor=_self(user),
            client=client,
            details={"attempts_left": left},
        )
        if left <= 0:
            raise Refused(
                AuthenticationFailed(
                    "Code incorrect. Trop d'essais : reconnectez-vous pour recevoir un nouveau code."
                )
            )
        plural = "s" if left > 1 else ""
        raise Refused(
            AuthenticationFailed(
                f"Code incorrect. Il vous reste {left} essai{plural}.", {"attempts_left": left}
            )
        )
    challenge.used_at = utcnow()
    result = _signed_in(session, user, challenge.kind, client, second_factor="email_code")
    if trust_device:
        token = secrets.token_urlsafe(32)
        _, user_agent = audit.client_info(client)
        session.add(
            TrustedDevice(
                user_id=user.id,
                token_hash=_hash_device_token(token),
                label=user_agent or "Navigateur",
                expires_at=utcnow() + DEVICE_LIFETIME,
            )
        )
        audit.record(session, "device.trusted", user=user, actor=_self(user), client=client)
        result["device_token"] = token
    return result


def resend_code(
    session: Session, *, challenge_id: str, client: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A new code for a pending sign-in, at most one a minute and three in all."""
    challenge, user = _live_challenge(session, challenge_id)
    now = utcnow()
    wait = (challenge.code_sent_at + RESEND_INTERVAL - now).total_seconds()
    if wait > 0:
        seconds = int(wait) + 1
        raise TooManyRequests(
            f"Un code vient d'être envoyé. Vous pourrez en demander un autre dans {seconds} secondes.",
            {"retry_after": seconds},
        )
    if challenge.sends >= MAX_SENDS:
        raise TooManyRequests("Trop de codes envoyés. Reconnectez-vous pour recommencer.")
    code = _new_code()
    challenge.code_hash = hash_password(code)
    challenge.code_sent_at = now
    challenge.expires_at = now + CODE_LIFETIME
    challenge.attempts = 0
    challenge.sends += 1
    _mail_code(session, user, code)
    audit.record(session, "code.sent", user=user, actor=_self(user), client=client, details={"resend": True})
    return {
        "status": "code_required",
        "challenge_id": challenge.id,
        "expires_at": challenge.expires_at.isoformat(),
    }


def logout(
    session: Session, *, session_id: str, actor: dict[str, Any] | None, client: dict | None = None
) -> None:
    row = sessions.revoke(session, session_id, actor=actor)
    if row is not None and actor:
        user = session.get(User, row.user_id)
        audit.record(session, "logout", user=user, actor=actor, client=client)


def logout_everywhere(session: Session, *, actor: dict[str, Any], client: dict | None = None) -> int:
    user = get_user(session, require_actor(actor)["id"])
    revoked = sessions.revoke_all(session, user, actor=actor)
    audit.record(
        session,
        "logout.everywhere",
        user=user,
        actor=actor,
        client=client,
        details={"sessions": len(revoked)},
    )
    return len(revoked)


def request_password_reset(
    session: Session, *, email: str, public_url: str, client: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Mail a reset link if the account exists; the answer is the same either way."""
    email = normalise_email(email)
    user = session.scalar(select(User).where(User.email == email))
    if user is not None and user.active:
        from comptoir_auth.models import AccountToken

        recent = session.scalar(
            select(AccountToken.id).where(
                AccountToken.user_id == user.id,
                AccountToken.purpose == "reset",
                AccountToken.created_at > utcnow() - RESET_INTERVAL,
            )
        )
        if recent is None:  # at most one mail a minute: the link is not a way to flood someone's inbox
            token = tokens.issue(session, user, "reset")
            mails.queue_account_mail(
                session,
                kind="password_reset",
                recipient=user.email,
                context={
                    "name": user.name,
                    "link": tokens.link(public_url, "reset", token),
                    "valid_minutes": int(tokens.LIFETIMES["reset"].total_seconds() // 60),
                },
            )
            audit.record(session, "password.reset_requested", user=user, client=client)
    else:
        audit.record(
            session, "password.reset_requested", email=email, client=client, details={"unknown": True}
        )
    return {"message": RESET_ANSWER}


def reset_password(
    session: Session, *, token: str, password: str, client: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Set a new password through a reset link; every open session ends and the account is unlocked."""
    row = tokens.find_valid(session, token, "reset")
    user = get_user(session, row.user_id)
    if not user.active:
        raise InvalidInput(tokens.INVALID_LINK_MESSAGE)
    check_password_policy(password, email=user.email, name=user.name)
    set_password(session, user, password)
    row.used_at = utcnow()
    sessions.revoke_all(session, user, actor=_self(user), reason="password_reset")
    throttle.clear(session, throttle.account_key(user.email))
    audit.record(session, "password.reset", user=user, actor=_self(user), client=client)
    return {"email": user.email}


def change_password(
    session: Session,
    *,
    actor: dict[str, Any],
    current_password: str,
    new_password: str,
    session_id: str | None = None,
    client: dict[str, Any] | None = None,
) -> None:
    """Change one's own password; the other sessions end, the current one stays."""
    user = get_user(session, require_actor(actor)["id"])
    if not verify_password(user.password_hash, current_password or ""):
        audit.record(session, "password.change_failed", user=user, actor=actor, client=client)
        raise Refused(InvalidInput("Le mot de passe actuel est incorrect.", {"field": "current_password"}))
    check_password_policy(new_password, email=user.email, name=user.name)
    if verify_password(user.password_hash, new_password):
        raise InvalidInput(
            "Le nouveau mot de passe doit être différent de l'actuel.", {"field": "new_password"}
        )
    set_password(session, user, new_password)
    sessions.revoke_all(session, user, actor=actor, reason="password_changed", keep=session_id)
    audit.record(session, "password.changed", user=user, actor=actor, client=client)


def set_two_factor(
    session: Session, *, actor: dict[str, Any], enabled: bool, client: dict[str, Any] | None = None
) -> dict[str, Any]:
    user = get_user(session, require_actor(actor)["id"])
    if not enabled:
        policy = session.get(RolePolicy, user.role)
        if policy and policy.two_factor_required:
            raise InvalidInput("La double authentification est obligatoire pour votre rôle.")
    if bool(user.two_factor_enabled) != bool(enabled):
        user.two_factor_enabled = bool(enabled)
        audit.record(
            session,
            "two_factor.enabled" if enabled else "two_factor.disabled",
            user=user,
            actor=actor,
            client=client,
        )
    return user_to_dict(user) | {"two_factor_required": two_factor_required(session, user)}


def list_devices(session: Session, user_id: str) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(TrustedDevice)
        .where(
            TrustedDevice.user_id == user_id,
            TrustedDevice.revoked_at.is_(None),
            TrustedDevice.expires_at > utcnow(),
        )
        .order_by(TrustedDevice.created_at.desc())
    ).all()
    return [
        {
            "id": row.id,
            "label": row.label,
            "created_at": row.created_at.isoformat(),
            "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
            "expires_at": row.expires_at.isoformat(),
        }
        for row in rows
    ]


def revoke_devices(
    session: Session,
    *,
    actor: dict[str, Any],
    user_id: str,
    device_id: str | None = None,
    client: dict[str, Any] | None = None,
) -> int:
    """Stop trusting one browser (or all) of ``user_id``: the user themself or an admin."""
    require_actor(actor)
    if actor["id"] != user_id:
        require_admin(actor)
    user = get_user(session, user_id)
    query = update(TrustedDevice).where(TrustedDevice.user_id == user.id, TrustedDevice.revoked_at.is_(None))
    if device_id:
        query = query.where(TrustedDevice.id == device_id)
    count = session.execute(query.values(revoked_at=utcnow())).rowcount
    if device_id and not count:
        raise NotFound("Navigateur introuvable.")
    if count:
        audit.record(
            session, "device.revoked", user=user, actor=actor, client=client, details={"count": count}
        )
    return count
