"""The pipeline over a real IMAP server (private dovecot, TLS): UIDs, move or flag after commit, redelivery."""

from __future__ import annotations

import uuid

from comptoir_mail_ingest.sources import ImapSource
from comptoir_testing import mails


def _source(imap_server, user, **kwargs):
    return ImapSource.from_url(imap_server.url(user), ssl_context=imap_server.ssl_context(), **kwargs)


def test_imap_mail_is_taken_in_then_moved_and_redelivery_creates_nothing(harness, imap_server):
    h = harness()
    user = f"support-{uuid.uuid4().hex[:6]}"
    sender = f"imap.{uuid.uuid4().hex[:6]}@client.example"
    original_id = mails.new_message_id()
    original = mails.simple(sender=sender, subject="Par IMAP", message_id=original_id)
    reply = mails.simple(sender=sender, subject="Re: Par IMAP", in_reply_to=original_id, body="suite")
    # The reply is delivered first: the Date order still puts the original first.
    imap_server.append(user, reply)
    imap_server.append(
        user, original.replace(b"Date: ", b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\nX-Old-Date: ", 1)
    )
    source = _source(imap_server, user, processed_folder="Traités")
    try:
        assert source.can_move
        stats = h.pipeline.run(h.mailbox, source)
    finally:
        source.close()
    assert (stats.fetched, stats.done, stats.tickets_created) == (2, 2, 1)
    assert len({row.ticket_id for row in h.rows()}) == 1
    assert imap_server.count(user, "INBOX") == 0 and imap_server.count(user, "Traités") == 2

    imap_server.append(user, original)
    imap_server.append(user, reply)
    source = _source(imap_server, user, processed_folder="Traités")
    try:
        stats = h.pipeline.run(h.mailbox, source)
    finally:
        source.close()
    assert (stats.fetched, stats.duplicates, stats.tickets_created) == (2, 2, 0)
    assert imap_server.count(user, "INBOX") == 0


def test_imap_without_processed_folder_flags_mail_and_does_not_fetch_it_again(harness, imap_server):
    h = harness()
    user = f"support-{uuid.uuid4().hex[:6]}"
    imap_server.append(
        user, mails.simple(sender=f"f{uuid.uuid4().hex[:6]}@client.example", subject="Drapeau")
    )
    for expected in (1, 0):
        source = _source(imap_server, user)
        try:
            assert h.pipeline.run(h.mailbox, source).fetched == expected
        finally:
            source.close()
    assert imap_server.count(user, "INBOX", "KEYWORD $Comptoir") == 1


def test_plain_imap_and_starttls_urls(imap_server):
    user = f"support-{uuid.uuid4().hex[:6]}"
    imap_server.append(user, mails.simple(subject="Clair"))
    plain = ImapSource.from_url(imap_server.url(user, tls=False))
    starttls = ImapSource.from_url(
        imap_server.url(user, tls=False).replace("imap://", "imap+starttls://"),
        ssl_context=imap_server.ssl_context(),
    )
    try:
        assert len(list(plain.fetch(10))) == 1 and len(list(starttls.fetch(10))) == 1
    finally:
        plain.close()
        starttls.close()
