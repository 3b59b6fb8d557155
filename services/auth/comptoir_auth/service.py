"""The nameko face of the auth service: entrypoints only, the logic is in the plain modules beside it."""

from __future__ import annotations

from typing import Any

import eventlet
from comptoir_common.nameko_ext import Database, rpc
from nameko.dependency_providers import Config
from nameko.rpc import RpcProxy
from nameko.timer import timer

from comptoir_auth import audit, mails, security_policy, sessions, signin, signup, users
from comptoir_auth.models import OutboxMessage, ProcessedEvent

NOTIFIER_TIMEOUT_SECONDS = 10


class AuthService:
    name = "auth"

    db = Database(outbox_model=OutboxMessage, inbox_model=ProcessedEvent)
    config = Config()
    notifier = RpcProxy("notifier")

    @property
    def public_url(self) -> str:
        return self.config["PUBLIC_URL"]

    def _commit_refusal(self, refusal: signin.Refused):
        """Keep the record of a refused attempt (failure count, audit line), then refuse."""
        self.db.commit()
        raise refusal.error

    # --- sign-in -------------------------------------------------------------------------------------------

    @rpc
    def login(
        self,
        email: str,
        password: str,
        kind: str = "web",
        client: dict | None = None,
        device_token: str | None = None,
    ) -> dict:
        """Check a password: ``{"status": "signed_in", user, session}`` or ``{"status": "code_required", ...}``."""
        try:
            return signin.login(
                self.db.session,
                email=email,
                password=password,
                kind=kind,
                client=client,
                device_token=device_token,
            )
        except signin.Refused as refusal:
            self._commit_refusal(refusal)

    @rpc
    def verify_code(
        self, challenge_id: str, code: str, trust_device: bool = False, client: dict | None = None
    ) -> dict:
        try:
            return signin.verify_code(
                self.db.session,
                challenge_id=challenge_id,
                code=code,
                trust_device=trust_device,
                client=client,
            )
        except signin.Refused as refusal:
            self._commit_refusal(refusal)

    @rpc
    def resend_code(self, challenge_id: str, client: dict | None = None) -> dict:
        try:
            return signin.resend_code(self.db.session, challenge_id=challenge_id, client=client)
        except signin.Refused as refusal:
            self._commit_refusal(refusal)

    @rpc
    def refresh_session(self, session_id: str) -> dict:
        """Renew an API token: the fresh identity and the session's end, if the session is still open."""
        row, user = sessions.refresh(self.db.session, session_id)
        return {"user": users.user_to_dict(user), "session": sessions.session_to_dict(row)}

    @rpc
    def logout(self, actor: dict, session_id: str, client: dict | None = None) -> None:
        signin.logout(self.db.session, session_id=session_id, actor=actor, client=client)

    @rpc
    def logout_everywhere(self, actor: dict, client: dict | None = None) -> dict:
        return {"revoked": signin.logout_everywhere(self.db.session, actor=actor, client=client)}

    @rpc
    def get_revocations(self) -> dict:
        """Deactivated users and revoked, unexpired sessions: what a starting gateway must refuse."""
        return sessions.revocation_state(self.db.session)

    # --- passwords and invitations -------------------------------------------------------------------------

    @rpc
    def request_password_reset(self, email: str, client: dict | None = None) -> dict:
        return signin.request_password_reset(
            self.db.session, email=email, public_url=self.public_url, client=client
        )

    @rpc
    def reset_password(self, token: str, password: str, client: dict | None = None) -> dict:
        return signin.reset_password(self.db.session, token=token, password=password, client=client)

    @rpc
    def get_link_info(self, token: str) -> dict:
        """Whom a still-valid invitation or reset link is for."""
        return users.invitation_info(self.db.session, token)

    @rpc
    def accept_invitation(self, token: str, password: str, client: dict | None = None) -> dict:
        return users.user_to_dict(
            users.accept_invitation(self.db.session, token=token, password=password, client=client)
        )

    # --- my account ----------------------------------------------------------------------------------------

    @rpc
    def get_profile(self, actor: dict) -> dict:
        user = users.get_user(self.db.session, actor["id"])
        return users.user_to_dict(user) | {
            "two_factor_required": signin.two_factor_required(self.db.session, user),
            "trusted_devices": signin.list_devices(self.db.session, user.id),
            "sessions": sessions.list_for_user(self.db.session, user.id),
        }

    @rpc
    def update_profile(self, actor: dict, changes: dict, client: dict | None = None) -> dict:
        return users.user_to_dict(users.update_own_profile(self.db.session, actor, changes, client=client))

    @rpc
    def change_password(
        self,
        actor: dict,
        current_password: str,
        new_password: str,
        session_id: str | None = None,
        client: dict | None = None,
    ) -> None:
        try:
            signin.change_password(
                self.db.session,
                actor=actor,
                current_password=current_password,
                new_password=new_password,
                session_id=session_id,
                client=client,
            )
        except signin.Refused as refusal:
            self._commit_refusal(refusal)

    @rpc
    def set_two_factor(self, actor: dict, enabled: bool, client: dict | None = None) -> dict:
        return signin.set_two_factor(self.db.session, actor=actor, enabled=enabled, client=client)

    @rpc
    def revoke_trusted_devices(
        self, actor: dict, user_id: str, device_id: str | None = None, client: dict | None = None
    ) -> dict:
        count = signin.revoke_devices(
            self.db.session, actor=actor, user_id=user_id, device_id=device_id, client=client
        )
        return {"revoked": count}

    # --- user administration (admins) ----------------------------------------------------------------------

    @rpc
    def list_users(self, actor: dict, **filters: Any) -> dict:
        return users.list_users(self.db.session, actor, **filters)

    @rpc
    def get_user(self, actor: dict, user_id: str) -> dict:
        user = users.admin_get_user(self.db.session, actor, user_id)
        return users.user_to_dict(user) | {
            "two_factor_required": signin.two_factor_required(self.db.session, user),
            "trusted_devices": signin.list_devices(self.db.session, user.id),
            "sessions": sessions.list_for_user(self.db.session, user.id),
        }

    @rpc
    def create_user(self, actor: dict, fields: dict, client: dict | None = None) -> dict:
        user = users.admin_create_user(
            self.db.session, actor, public_url=self.public_url, client=client, **fields
        )
        return users.user_to_dict(user)

    @rpc
    def update_user(self, actor: dict, user_id: str, changes: dict, client: dict | None = None) -> dict:
        return users.user_to_dict(users.update_user(self.db.session, actor, user_id, changes, client=client))

    @rpc
    def deactivate_user(self, actor: dict, user_id: str, client: dict | None = None) -> dict:
        return users.user_to_dict(users.deactivate_user(self.db.session, actor, user_id, client=client))

    @rpc
    def reactivate_user(self, actor: dict, user_id: str, client: dict | None = None) -> dict:
        return users.user_to_dict(users.reactivate_user(self.db.session, actor, user_id, client=client))

    @rpc
    def resend_invitation(self, actor: dict, user_id: str, client: dict | None = None) -> dict:
        user = users.admin_get_user(self.db.session, actor, user_id)
        users.send_invitation(self.db.session, user, public_url=self.public_url, actor=actor, client=client)
        return users.user_to_dict(user)

    @rpc
    def revoke_user_sessions(self, actor: dict, user_id: str, client: dict | None = None) -> dict:
        user = users.admin_get_user(self.db.session, actor, user_id)
        revoked = sessions.revoke_all(self.db.session, user, actor=actor, reason="revoked_by_admin")
        audit.record(self.db.session, "logout.everywhere", user=user, actor=actor, client=client)
        return {"revoked": len(revoked)}

    # --- security settings, locks, audit (admins) -----------------------------------------------------------

    @rpc
    def get_role_policies(self, actor: dict) -> list:
        return security_policy.get_role_policies(self.db.session, actor)

    @rpc
    def set_role_policy(
        self, actor: dict, role: str, two_factor_required: bool, client: dict | None = None
    ) -> list:
        return security_policy.set_role_policy(
            self.db.session, actor, role=role, two_factor_required=two_factor_required, client=client
        )

    @rpc
    def list_locks(self, actor: dict) -> list:
        return security_policy.list_locks(self.db.session, actor)

    @rpc
    def clear_lock(self, actor: dict, key: str, client: dict | None = None) -> None:
        security_policy.clear_lock(self.db.session, actor, key=key, client=client)

    @rpc
    def list_audit(self, actor: dict, **filters: Any) -> dict:
        from comptoir_auth.policy import require_admin

        require_admin(actor)
        return audit.list_entries(self.db.session, **filters)

    # --- sign-up requests ----------------------------------------------------------------------------------

    @rpc
    def request_signup(self, fields: dict, client: dict | None = None) -> dict:
        return signup.request_signup(self.db.session, client=client, **fields)

    @rpc
    def list_signups(self, actor: dict, status: str | None = "pending") -> list:
        return signup.list_requests(self.db.session, actor, status=status)

    @rpc
    def get_signup(self, actor: dict, request_id: str) -> dict:
        return signup.get_request(self.db.session, actor, request_id)

    @rpc
    def approve_signup(
        self, actor: dict, request_id: str, customer_id: str, role: str = "client", client: dict | None = None
    ) -> dict:
        return signup.approve(
            self.db.session,
            actor,
            request_id,
            customer_id=customer_id,
            role=role,
            public_url=self.public_url,
            client=client,
        )

    @rpc
    def reject_signup(self, actor: dict, request_id: str, note: str = "", client: dict | None = None) -> dict:
        return signup.reject(self.db.session, actor, request_id, note=note, client=client)

    # --- account mails -------------------------------------------------------------------------------------

    def _send_account_mail(self, kind: str, recipient: str, context: dict, request_id: str) -> None:
        reply = self.notifier.send_account_mail.call_async(kind, recipient, context, request_id=request_id)
        try:
            with eventlet.Timeout(NOTIFIER_TIMEOUT_SECONDS):
                reply.result()
        except eventlet.Timeout as exc:  # a BaseException: turn it into an ordinary, retried failure
            raise TimeoutError("the notifier did not answer") from exc

    @timer(interval=0.5, eager=True)
    def dispatch_account_mails(self) -> None:
        """Hand pending account mails to the notifier (links and codes never travel in events)."""
        mails.dispatch_pending(self.db.session, self._send_account_mail)
        self.db.commit()
