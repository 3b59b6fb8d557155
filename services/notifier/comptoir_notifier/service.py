"""The nameko face of the notifier: event handlers queue mail, a timer delivers it, staff read failures and set
their preferences."""

from __future__ import annotations

from comptoir_common import mailthread
from comptoir_common.errors import PermissionDenied
from comptoir_common.events import Event
from comptoir_common.nameko_ext import Database, event_handler, rpc
from nameko.dependency_providers import Config
from nameko.timer import timer
from sqlalchemy import select

from comptoir_notifier import account_mail, delivery, notifications, rendering
from comptoir_notifier.models import FlaggedAddress, OutboxMessage, OutgoingMail, ProcessedEvent

# Mails sent per timer tick before yielding, so that a long queue does not starve shutdown.
DELIVERY_BATCH = 50


def _require_admin(actor: dict) -> None:
    if actor.get("role") != "admin" or not actor.get("id"):
        raise PermissionDenied("Réservé aux administrateurs.")


def _require_staff(actor: dict) -> None:
    if actor.get("role") not in notifications.STAFF_ROLES or not actor.get("id"):
        raise PermissionDenied("Réservé à l'équipe support.")


class NotifierService:
    name = "notifier"

    db = Database(outbox_model=OutboxMessage, inbox_model=ProcessedEvent)
    config = Config()

    def _mail_context(self) -> notifications.MailContext:
        config = self.config
        return notifications.MailContext(
            public_url=config["PUBLIC_URL"],
            mail_domain=config["MAIL_DOMAIN"],
            support_address=config["SUPPORT_ADDRESS"],
            thread_key=mailthread.thread_key(config["THREAD_SECRET"]),
            templates_dir=config.get("TEMPLATES_DIR") or "",
            ack_limit_per_hour=int(config.get("ACK_LIMIT_PER_HOUR", 5)),
        )

    # --- ticket mails ----------------------------------------------------------------------------------------

    @event_handler("tickets", "ticket.created")
    def on_ticket_created(self, event: Event) -> None:
        notifications.on_ticket_created(self.db.session, event, self._mail_context())

    @rpc
    def send_account_mail(self, kind: str, recipient: str, context: dict, request_id: str) -> dict:
        """Queue an account mail (from auth; carries a link or code, hence RPC and not an event), once per id."""
        mail = account_mail.queue_account_mail(
            self.db.session,
            kind=kind,
            recipient=recipient,
            context=context,
            request_id=request_id,
            mail_context=self._mail_context(),
        )
        return {"queued": mail is not None}

    @event_handler("tickets", "ticket.status_changed")
    def on_ticket_status_changed(self, event: Event) -> None:
        notifications.on_status_changed(self.db.session, event, self._mail_context())

    @event_handler("tickets", "ticket.message_added")
    def on_ticket_message_added(self, event: Event) -> None:
        notifications.on_message_added(self.db.session, event, self._mail_context())

    @event_handler("tickets", "ticket.assigned")
    def on_ticket_assigned(self, event: Event) -> None:
        notifications.on_assigned(self.db.session, event, self._mail_context())

    @event_handler("tickets", "ticket.sla_breached")
    def on_ticket_sla_breached(self, event: Event) -> None:
        notifications.on_sla_breached(self.db.session, event, self._mail_context())

    @event_handler("mail_ingest", "mail.bounced")
    def on_mail_bounced(self, event: Event) -> None:
        notifications.on_mail_bounced(self.db.session, event)

    # --- people (read model) ---------------------------------------------------------------------------------

    @event_handler("auth", "user.created")
    def on_user_created(self, event: Event) -> None:
        notifications.apply_user_event(self.db.session, event.data)

    @event_handler("auth", "user.updated")
    def on_user_updated(self, event: Event) -> None:
        notifications.apply_user_event(self.db.session, event.data)

    @event_handler("auth", "user.deactivated")
    def on_user_deactivated(self, event: Event) -> None:
        notifications.apply_user_event(self.db.session, event.data, active=False)

    @event_handler("auth", "user.reactivated")
    def on_user_reactivated(self, event: Event) -> None:
        notifications.apply_user_event(self.db.session, event.data, active=True)

    # --- delivery --------------------------------------------------------------------------------------------

    @timer(interval=1, eager=True)
    def deliver_due_mail(self) -> None:
        config = self.config
        smtp = delivery.SmtpConfig.from_url(config["SMTP_URL"], timeout=float(config["SMTP_TIMEOUT"]))
        with delivery.SmtpSender(smtp) as sender:
            for _ in range(DELIVERY_BATCH):
                mail = delivery.claim_next_due(self.db.session)
                if mail is None:
                    break
                delivery.deliver(mail, sender, config["FROM_ADDRESS"], int(config["MAX_ATTEMPTS"]))
                if mail.status == "failed":
                    # A 5xx refusal fails at once (permanent); exhausted retries fail after MAX_ATTEMPTS.
                    permanent = mail.attempts < int(config["MAX_ATTEMPTS"])
                    if permanent:
                        notifications.flag_address(self.db.session, mail.recipient, mail.last_error or "")
                    notifications.publish_failure(self.db.session, mail, permanent=permanent, source="smtp")
                self.db.commit()
        self.db.commit()

    # --- staff -----------------------------------------------------------------------------------------------

    @rpc
    def get_preferences(self, actor: dict) -> dict:
        _require_staff(actor)
        return notifications.preferences(self.db.session, actor["id"])

    @rpc
    def set_preferences(self, actor: dict, preferences: dict) -> dict:
        _require_staff(actor)
        return notifications.set_preferences(self.db.session, actor["id"], preferences or {})

    @rpc
    def list_mails(
        self, actor: dict, ticket_id: str | None = None, status: str | None = None, limit: int = 100
    ):
        """Mails sent or failing (for a ticket, or all), newest first: staff see what reached whom."""
        _require_staff(actor)
        query = (
            select(OutgoingMail).order_by(OutgoingMail.created_at.desc()).limit(max(1, min(int(limit), 500)))
        )
        if ticket_id:
            query = query.where(OutgoingMail.ticket_id == ticket_id)
        if status:
            query = query.where(OutgoingMail.status == status)
        return [notifications.mail_to_dict(mail) for mail in self.db.session.scalars(query)]

    @rpc
    def flagged_addresses(self, actor: dict) -> list:
        _require_staff(actor)
        rows = self.db.session.scalars(select(FlaggedAddress).order_by(FlaggedAddress.flagged_at.desc()))
        return [
            {
                "email": r.email,
                "reason": r.reason,
                "failures": r.failures,
                "flagged_at": r.flagged_at.isoformat(),
            }
            for r in rows
        ]

    @rpc
    def list_templates(self, actor: dict) -> list:
        """The mails admins can adjust, with who adjusted them last."""
        _require_admin(actor)
        return rendering.list_templates(self.db.session)

    @rpc
    def get_template(self, actor: dict, name: str) -> dict:
        """Each part's current text, the packaged text, which parts are adjusted, the variables it may use."""
        _require_admin(actor)
        return rendering.describe(self.db.session, name, self.config.get("TEMPLATES_DIR") or "")

    @rpc
    def set_template(self, actor: dict, name: str, parts: dict) -> dict:
        """Save an admin's wording (checked first); every notifier process uses it within a few seconds."""
        _require_admin(actor)
        rendering.save(self.db.session, name, parts or {}, actor.get("name"))
        return rendering.describe(self.db.session, name, self.config.get("TEMPLATES_DIR") or "")

    @rpc
    def reset_template(self, actor: dict, name: str) -> dict:
        _require_admin(actor)
        rendering.reset(self.db.session, name)
        return rendering.describe(self.db.session, name, self.config.get("TEMPLATES_DIR") or "")
