"""The nameko face of the notifier: event handlers queue mail, a timer delivers it."""

from __future__ import annotations

from comptoir_common.events import Event
from comptoir_common.nameko_ext import Database, event_handler
from nameko.dependency_providers import Config
from nameko.timer import timer

from comptoir_notifier import delivery, notifications
from comptoir_notifier.models import OutboxMessage, ProcessedEvent

# Mails sent per timer tick before yielding, so that a long queue does not starve shutdown.
DELIVERY_BATCH = 50


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
        )

    @event_handler("tickets", "ticket.created")
    def on_ticket_created(self, event: Event) -> None:
        notifications.on_ticket_created(self.db.session, event, self._mail_context())

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
                self.db.commit()
        self.db.commit()
